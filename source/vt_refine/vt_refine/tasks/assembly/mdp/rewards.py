"""Reward terms: the paper's sparse success reward and a metric of where episodes end up (it returns zeros)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from isaaclab.managers import ManagerTermBase, RewardTermCfg

from .success import AssemblySuccessCfg, assembly_error, assembly_success

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedRLEnv

__all__ = ["OUTCOMES", "assembly_outcome_metric", "classify_outcome", "sparse_success"]


def sparse_success(env: ManagerBasedRLEnv, rule: AssemblySuccessCfg) -> torch.Tensor:
    """1 on a step where the parts are assembled, else 0 (undoing the reward manager's dt scaling,
    so the term adds exactly its weight).

    Returns:
        Tensor of shape (num_envs,).
    """
    return assembly_success(env, rule).float() / env.step_dt


OUTCOMES = ("assembled", "not_grasped", "dropped", "not_aligned", "aligned_not_inserted")
"""Where an episode ended up, in the order of the task's stages (see :func:`classify_outcome`)."""


def classify_outcome(assembled: torch.Tensor, lifted: torch.Tensor, aligned: torch.Tensor,
                     on_table: torch.Tensor) -> torch.Tensor:
    """Index into :data:`OUTCOMES` of each episode, from what happened at some step of it: the plug was
    ``assembled``, ``lifted`` off the table, ``aligned`` over the socket's axis within the success bound, and
    whether it lies ``on_table`` at the end. A plug lifted, never aligned and back on the table was dropped.

    Args:
        assembled, lifted, aligned, on_table: Bool tensors of shape (E,).

    Returns:
        Long tensor of shape (E,).
    """
    out = torch.full_like(assembled, OUTCOMES.index("not_aligned"), dtype=torch.long)
    out = torch.where(~lifted, OUTCOMES.index("not_grasped"), out)
    out = torch.where(lifted & ~aligned & on_table, OUTCOMES.index("dropped"), out)
    out = torch.where(aligned, OUTCOMES.index("aligned_not_inserted"), out)
    return torch.where(assembled, OUTCOMES.index("assembled"), out)


class assembly_outcome_metric(ManagerTermBase):
    """Zero reward (give it a nonzero weight: Isaac Lab skips zero-weight terms); tracks where each episode gets (:data:`OUTCOMES`) and, when episodes end, logs their shares
    into ``extras["log"]`` (``Metrics/success_rate``, ``Metrics/outcome/<name>``). An evaluation calls
    :meth:`start_recording` after a reset and reads :attr:`first_outcome` once every env finished an episode.

    Plug heights are in the env frame (table top at z = 0); "aligned" means on the socket's axis within the
    success rule's xy bound, upright within its tilt bound, and no higher than ``align_height`` above the socket's
    top (about to go in or in).
    """

    lift_height: float = 0.02
    """The plug counts as lifted once its origin is this far above the table [m]."""
    table_height: float = 0.01
    """The plug lies on the table when its origin is lower than this [m]."""
    align_height: float = 0.03

    def __init__(self, cfg: RewardTermCfg, env: ManagerBasedRLEnv):
        super().__init__(cfg, env)
        e, device = env.num_envs, env.device
        self._assembled = torch.zeros(e, dtype=torch.bool, device=device)
        self._lifted = torch.zeros_like(self._assembled)
        self._aligned = torch.zeros_like(self._assembled)
        self.first_outcome = torch.full((e,), -1, dtype=torch.long, device=device)
        """Outcome index of each env's first episode finished since :meth:`start_recording`; -1 before. (E,)"""

    def start_recording(self) -> None:
        """Forget the recorded outcomes and the running episodes' progress (call right after a reset)."""
        self.first_outcome.fill_(-1)
        for flag in (self._assembled, self._lifted, self._aligned):
            flag.fill_(False)

    def reset(self, env_ids: torch.Tensor | None = None) -> None:
        if env_ids is None:
            env_ids = torch.arange(self.num_envs, device=self.device)
        plug_z = (self._env.scene["plug"].data.root_pos_w.torch - self._env.scene.env_origins)[env_ids, 2]
        outcome = classify_outcome(self._assembled[env_ids], self._lifted[env_ids], self._aligned[env_ids],
                                   plug_z < self.table_height)
        first = self.first_outcome[env_ids]
        self.first_outcome[env_ids] = torch.where(first < 0, outcome, first)
        log = self._env.extras.setdefault("log", {})
        log["Metrics/success_rate"] = self._assembled[env_ids].float().mean()
        for i, name in enumerate(OUTCOMES[1:], start=1):
            log[f"Metrics/outcome/{name}"] = (outcome == i).float().mean()
        for flag in (self._assembled, self._lifted, self._aligned):
            flag[env_ids] = False

    def __call__(self, env: ManagerBasedRLEnv, rule: AssemblySuccessCfg, insertion_depth: float) -> torch.Tensor:
        xy_error, height_left, tilt = assembly_error(env, rule.assembled_plug_z)
        plug_z = env.scene["plug"].data.root_pos_w.torch[:, 2] - env.scene.env_origins[:, 2]
        self._assembled |= assembly_success(env, rule)
        self._lifted |= plug_z > self.lift_height
        self._aligned |= ((xy_error < rule.xy_threshold) & (tilt < math.radians(rule.max_tilt_deg))
                          & (height_left < insertion_depth + self.align_height))
        return torch.zeros(env.num_envs, device=env.device)
