"""Physics presets resolve as Isaac Lab's CLI resolves them (``presets=physx``): Newton + MuJoCo-Warp with convex
part pieces by default, PhysX with SDF part colliders. Config level only: PhysX needs Isaac Sim (Kit), which
cannot run here, so a PhysX simulation is not stepped in this suite."""

from __future__ import annotations

import re
from pathlib import Path

import pytest


@pytest.mark.parametrize("task_cfg", ["PegInHoleAlohaEnvCfg", "BayonetAlohaEnvCfg"])
def test_physx_preset_selects_physx_and_sdf_part_colliders(task_cfg):
    from isaaclab_newton.physics import NewtonCfg
    from isaaclab_physx.physics import PhysxCfg
    from isaaclab_tasks.utils.hydra import resolve_presets

    from vt_refine.tasks.assembly.config.aloha import aloha_env_cfg

    def approximation(usd_path) -> set[str]:
        return set(re.findall(r'physics:approximation = "(\w+)"', Path(usd_path).read_text()))

    default = resolve_presets(getattr(aloha_env_cfg, task_cfg)(), selected=())
    physx = resolve_presets(getattr(aloha_env_cfg, task_cfg)(), selected=("physx",))
    assert isinstance(default.sim.physics, NewtonCfg) and isinstance(physx.sim.physics, PhysxCfg)
    for part in ("plug", "socket"):
        newton_usd = getattr(default.scene, part).spawn.usd_path
        physx_usd = getattr(physx.scene, part).spawn.usd_path
        assert newton_usd != physx_usd
        assert approximation(physx_usd) == {"sdf"}, physx_usd
        assert "sdf" not in approximation(newton_usd), newton_usd  # exact convex pieces for Newton
