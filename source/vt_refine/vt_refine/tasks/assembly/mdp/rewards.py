"""Reward terms: the paper's sparse success reward, a metric of where episodes end up (it returns zeros), and an
optional potential-based progress term for fine-tuning (weight 0 in the registered tasks: the paper's reward)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from isaaclab.managers import ManagerTermBase, RewardTermCfg

from .success import AssemblySuccessCfg, assembly_error, assembly_success

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedRLEnv

__all__ = ["OUTCOMES", "assembly_outcome_metric", "assembly_progress", "classify_outcome", "progress_potential",
           "sparse_success"]


def sparse_success(env: ManagerBasedRLEnv, rule: AssemblySuccessCfg) -> torch.Tensor:
    """1 on a step where the parts are assembled, else 0 (undoing the reward manager's dt scaling,
    so the term adds exactly its weight).

    Returns:
        Tensor of shape (num_envs,).
    """
    return assembly_success(env, rule).float() / env.step_dt


def progress_potential(xy_error: torch.Tensor, height_left: torch.Tensor, distance_scale: float) -> torch.Tensor:
    """Potential of a plug pose: -1 at ``distance_scale`` [m] or farther from its assembled pose, rising linearly
    to 0 there (a plug below the assembled height counts as at it).

    Args:
        xy_error, height_left: Tensors of shape (E,) from :func:`~.success.assembly_error`.

    Returns:
        Tensor of shape (E,) in [-1, 0].
    """
    distance = torch.sqrt(xy_error.square() + height_left.clamp(min=0.0).square())
    return -(distance / distance_scale).clamp(max=1.0)


class assembly_progress(ManagerTermBase):
    """Potential-based shaping (Ng et al. 1999): the change of :func:`progress_potential` since the last step, so
    an episode's shaped return is its potential at the end minus at the start (at most 1 x the weight) and the
    shaping cannot change which policy is best. Not in the paper (sparse reward only); fine-tuning turns it on
    with a weight (``FinetuneSettings.progress_reward_weight``). The first step after a reset adds 0 (the reset
    events have moved the plug after the last reading).
    """

    def __init__(self, cfg: RewardTermCfg, env: ManagerBasedRLEnv):
        super().__init__(cfg, env)
        self._last = torch.zeros(env.num_envs, device=env.device)
        self._fresh = torch.ones(env.num_envs, dtype=torch.bool, device=env.device)

    def reset(self, env_ids: torch.Tensor | None = None) -> None:
        self._fresh[slice(None) if env_ids is None else env_ids] = True

    def __call__(self, env: ManagerBasedRLEnv, rule: AssemblySuccessCfg, distance_scale: float) -> torch.Tensor:
        xy_error, height_left, _ = assembly_error(env, rule.assembled_plug_z)
        potential = progress_potential(xy_error, height_left, distance_scale)
        change = torch.where(self._fresh, torch.zeros_like(potential), potential - self._last)
        self._last = potential
        self._fresh[:] = False
        return change / env.step_dt  # the manager multiplies by dt: the term adds weight x change


OUTCOMES = ("assembled", "not_grasped", "dropped", "not_aligned", "aligned_not_inserted")
"""Where an episode ended up, in the order of the task's stages (see :func:`classify_outcome`)."""


def classify_outcome(assembled: torch.Tensor, lifted: torch.Tensor, near: torch.Tensor, aligned: torch.Tensor,
                     on_table: torch.Tensor) -> torch.Tensor:
    """Index into :data:`OUTCOMES` of each episode, from what happened at some step of it: the plug was
    ``assembled``, ``lifted`` off the table, brought ``near`` the socket's top, ``aligned`` over the socket's axis
    within the success bound, and whether it lies ``on_table`` at the end. A plug lifted and back on the table
    without ever reaching the socket was dropped; one that reached it but never its axis was not aligned.

    Args:
        assembled, lifted, near, aligned, on_table: Bool tensors of shape (E,).

    Returns:
        Long tensor of shape (E,).
    """
    out = torch.full_like(assembled, OUTCOMES.index("not_aligned"), dtype=torch.long)
    out = torch.where(~lifted, OUTCOMES.index("not_grasped"), out)
    out = torch.where(lifted & ~near & ~aligned & on_table, OUTCOMES.index("dropped"), out)
    out = torch.where(aligned, OUTCOMES.index("aligned_not_inserted"), out)
    return torch.where(assembled, OUTCOMES.index("assembled"), out)


class assembly_outcome_metric(ManagerTermBase):
    """Zero reward (give it a nonzero weight: Isaac Lab skips zero-weight terms); tracks where each episode gets
    (:data:`OUTCOMES`) and, when episodes end, logs their shares into ``extras["log"]`` (``Metrics/success_rate``,
    ``Metrics/outcome/<name>``). An evaluation calls :meth:`start_recording` after a reset and reads
    :attr:`first_outcome` once every env finished an episode.

    Plug heights are in the env frame (table top at z = 0). "Near" means within ``near_xy`` of the socket's axis
    and no higher than ``align_height`` above the socket's top; "aligned" adds the success rule's xy and tilt bounds.
    Whether the plug lies on the table is recorded at every step: when the episode ends the reset event has
    already moved the plug to its next start pose.
    """

    lift_height: float = 0.02
    """The plug counts as lifted once its origin is this far above the table [m]; back below it, it lies on the
    table (a peg fallen on its side rests at its radius, 16-18 mm)."""
    align_height: float = 0.03
    near_xy: float = 0.02
    """The plug reached the socket within this distance of its axis [m] (about the peg's radius)."""

    def __init__(self, cfg: RewardTermCfg, env: ManagerBasedRLEnv):
        super().__init__(cfg, env)
        e, device = env.num_envs, env.device
        self._assembled = torch.zeros(e, dtype=torch.bool, device=device)
        self._lifted = torch.zeros_like(self._assembled)
        self._near = torch.zeros_like(self._assembled)
        self._aligned = torch.zeros_like(self._assembled)
        self._on_table = torch.ones_like(self._assembled)
        self.first_outcome = torch.full((e,), -1, dtype=torch.long, device=device)
        """Outcome index of each env's first episode finished since :meth:`start_recording`; -1 before. (E,)"""

    def _progress_flags(self) -> tuple[torch.Tensor, ...]:
        return self._assembled, self._lifted, self._near, self._aligned

    def start_recording(self) -> None:
        """Forget the recorded outcomes and the running episodes' progress (call right after a reset)."""
        self.first_outcome.fill_(-1)
        for flag in self._progress_flags():
            flag.fill_(False)
        self._on_table.fill_(True)

    def reset(self, env_ids: torch.Tensor | None = None) -> None:
        if env_ids is None:
            env_ids = torch.arange(self.num_envs, device=self.device)
        outcome = classify_outcome(*(flag[env_ids] for flag in self._progress_flags()), self._on_table[env_ids])
        first = self.first_outcome[env_ids]
        self.first_outcome[env_ids] = torch.where(first < 0, outcome, first)
        log = self._env.extras.setdefault("log", {})
        log["Metrics/success_rate"] = self._assembled[env_ids].float().mean()
        for i, name in enumerate(OUTCOMES[1:], start=1):
            log[f"Metrics/outcome/{name}"] = (outcome == i).float().mean()
        for flag in self._progress_flags():
            flag[env_ids] = False
        self._on_table[env_ids] = True

    def __call__(self, env: ManagerBasedRLEnv, rule: AssemblySuccessCfg, insertion_depth: float) -> torch.Tensor:
        xy_error, height_left, tilt = assembly_error(env, rule.assembled_plug_z)
        plug_z = env.scene["plug"].data.root_pos_w.torch[:, 2] - env.scene.env_origins[:, 2]
        low = height_left < insertion_depth + self.align_height
        self._assembled |= assembly_success(env, rule)
        self._lifted |= plug_z > self.lift_height
        self._near |= (xy_error < self.near_xy) & low
        self._aligned |= (xy_error < rule.xy_threshold) & (tilt < math.radians(rule.max_tilt_deg)) & low
        self._on_table[:] = plug_z < self.lift_height
        return torch.zeros(env.num_envs, device=env.device)
