"""Reward terms: the paper's sparse success reward and a zero-weight success-rate metric."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from isaaclab.managers import ManagerTermBase, RewardTermCfg

from .success import AssemblySuccessCfg, assembly_success

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedRLEnv

__all__ = ["sparse_success", "success_rate_metric"]


def sparse_success(env: ManagerBasedRLEnv, rule: AssemblySuccessCfg) -> torch.Tensor:
    """1 on a step where the parts are assembled, else 0 (undoing the reward manager's dt scaling,
    so the term adds exactly its weight).

    Returns:
        Tensor of shape (num_envs,).
    """
    return assembly_success(env, rule).float() / env.step_dt


class success_rate_metric(ManagerTermBase):
    """Zero reward; logs ``Metrics/success_rate`` into ``extras["log"]`` when episodes end: the share
    of the ending episodes whose parts were assembled at some step."""

    def __init__(self, cfg: RewardTermCfg, env: ManagerBasedRLEnv):
        super().__init__(cfg, env)
        self._ever_succeeded = torch.zeros(env.num_envs, dtype=torch.bool, device=env.device)

    def reset(self, env_ids: torch.Tensor | None = None) -> None:
        if env_ids is None:
            env_ids = slice(None)
        log = self._env.extras.setdefault("log", {})
        log["Metrics/success_rate"] = self._ever_succeeded[env_ids].float().mean()
        self._ever_succeeded[env_ids] = False

    def __call__(self, env: ManagerBasedRLEnv, rule: AssemblySuccessCfg) -> torch.Tensor:
        self._ever_succeeded |= assembly_success(env, rule)
        return torch.zeros(env.num_envs, device=env.device)
