"""Gym entry point of the assembly tasks: Isaac Lab's ManagerBasedRLEnv, after a device check.

Isaac Lab's CLI defaults ``--device`` to cuda:0 and ManagerBasedRLEnv allocates on that device before it
validates its cfg, so on a machine without a GPU the run would die deep inside torch. This factory
checks first and says what to do; the environment it returns is the stock ManagerBasedRLEnv.
"""

from __future__ import annotations

from isaaclab.envs import ManagerBasedRLEnv


def make_assembly_env(cfg, render_mode: str | None = None, **kwargs) -> ManagerBasedRLEnv:
    cfg.validate_config()
    return ManagerBasedRLEnv(cfg=cfg, render_mode=render_mode, **kwargs)
