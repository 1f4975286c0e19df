"""Gym entry point of the assembly tasks: Isaac Lab's ManagerBasedRLEnv, after a device check and with the
assembly applied from the final cfg.

Isaac Lab's CLI defaults ``--device`` to cuda:0 and ManagerBasedRLEnv allocates on that device before it
validates its cfg, so on a machine without a GPU the run would die deep inside torch: this factory checks first
and says what to do. Command-line overrides (``env.task.mesh_dir=...``, ``env.task.clearance=...``) reach the
cfg after its ``__post_init__`` wired the default parts in, so the parts and the success rule are wired again here
from the final ``cfg.task``. The environment it returns is the stock ManagerBasedRLEnv.
"""

from __future__ import annotations

from isaaclab.envs import ManagerBasedRLEnv


def prepare_assembly_cfg(cfg):
    """Apply ``cfg.task`` (parts, colliders, success rule) to the cfg, for the physics backend it runs on."""
    from isaaclab_physx.physics import PhysxCfg

    from isaaclab_tasks.utils.hydra import resolve_presets

    from .assembly_env_cfg import apply_assembly

    apply_assembly(cfg)
    # the part spawns are presets again: resolve them for the backend already chosen
    resolve_presets(cfg, selected=("physx",) if isinstance(cfg.sim.physics, PhysxCfg) else ())
    return cfg


def make_assembly_env(cfg, render_mode: str | None = None, **kwargs) -> ManagerBasedRLEnv:
    cfg.validate_config()
    return ManagerBasedRLEnv(cfg=prepare_assembly_cfg(cfg), render_mode=render_mode, **kwargs)
