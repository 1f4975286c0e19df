"""Decisions made of Te env steps: the per-step bookkeeping and a gym-vector-style multi-step wrapper.

Symbols used in shapes:
    E   envs
    Ta  chunk length
    Te  executed steps per decision (act_steps)
    Da  action dim

A decision executes the first Te actions of a chunk. Its reward is the (optionally discounted) sum of the
Te step rewards, it is done if any step ended the episode, and its next observation is that of the last
step. Vectorised envs reset an env inside the step that ended its episode, so the remaining actions of that
env's chunk would act on the *next* episode: instead the env executes a hold action (e.g. its current joint
positions) until the decision is over, and those padding steps count for nothing (no reward, no done).

:class:`DecisionAccumulator` holds that logic for one decision at a time; :class:`MultiStepVecEnv` drives it
in a loop (one ``step`` = one decision) and the DPPO algorithm drives it one env step at a time from inside
rsl-rl's runner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from tensordict import TensorDict

__all__ = ["DecisionAccumulator", "merge_logs", "MultiStepVecEnv", "evaluate_first_episodes", "first_episode_returns",
           "SUCCESS_RETURN_THRESHOLD"]

SUCCESS_RETURN_THRESHOLD = 0.5
"""An episode whose return reaches this succeeded (the tasks' sparse reward pays 1 once, on success)."""


class DecisionAccumulator:
    """Merges the Te env steps of one decision of E envs into one reward / done / time-out per env."""

    def __init__(self, num_envs: int, act_steps: int, reward_discount: float = 1.0,
                 device: torch.device | str = "cpu"):
        """
        Args:
            num_envs: E.
            act_steps: Te, env steps per decision.
            reward_discount: Discount per env step inside the decision (1 = plain sum).
        """
        if num_envs < 1 or act_steps < 1:
            raise ValueError(f"num_envs and act_steps must be >= 1, got {num_envs} and {act_steps}")
        if not 0.0 < reward_discount <= 1.0:
            raise ValueError(f"reward_discount must be in (0, 1], got {reward_discount}")
        self.num_envs, self.act_steps, self.reward_discount = num_envs, act_steps, float(reward_discount)
        self.device = torch.device(device)
        self.reward = torch.zeros(num_envs, device=self.device)
        self.done = torch.zeros(num_envs, dtype=torch.bool, device=self.device)
        self.time_out = torch.zeros(num_envs, dtype=torch.bool, device=self.device)
        self.active = torch.ones(num_envs, dtype=torch.bool, device=self.device)
        """Envs still in the episode the decision started in (False: executing padding actions)."""
        self.step = 0
        self.lost_dones = 0
        """Episodes that ended during padding steps (an env reset, then ended again within the same decision)."""

    def begin(self) -> None:
        """Start a new decision."""
        self.reward.zero_()
        self.done.zero_()
        self.time_out.zero_()
        self.active.fill_(True)
        self.step = 0

    @property
    def complete(self) -> bool:
        """All Te steps of the decision were added."""
        return self.step >= self.act_steps

    def select_actions(self, chunk_actions: torch.Tensor, hold_actions: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Actions of the current step: the chunk's for active envs, ``hold_actions()`` (E, Da) for the others.

        Args:
            chunk_actions: Tensor of shape (E, Da), the chunk's action for this step.
            hold_actions: Called only when some env is inactive.
        """
        if bool(self.active.all()):
            return chunk_actions
        return torch.where(self.active.unsqueeze(-1), chunk_actions, hold_actions().to(chunk_actions.dtype))

    def add(self, rewards: torch.Tensor, dones: torch.Tensor, time_outs: torch.Tensor | None = None) -> torch.Tensor:
        """Record one env step.

        Args:
            rewards: Tensor of shape (E,).
            dones: Tensor of shape (E,) (bool or 0/1): the step ended the episode (terminal or time-out).
            time_outs: Tensor of shape (E,) (bool or 0/1) or None: the ending was a time limit.

        Returns:
            Bool Tensor of shape (E,): envs whose decision episode ended at this step.
        """
        if self.complete:
            raise RuntimeError(f"decision already has its {self.act_steps} steps; call begin() first")
        rewards = rewards.reshape(-1).to(self.reward.dtype)
        dones = dones.reshape(-1).to(torch.bool)
        if rewards.shape[0] != self.num_envs or dones.shape[0] != self.num_envs:
            raise ValueError(f"rewards and dones must have {self.num_envs} entries, got {tuple(rewards.shape)} "
                             f"and {tuple(dones.shape)}")
        active = self.active
        self.reward += torch.where(active, rewards * self.reward_discount**self.step, torch.zeros_like(rewards))
        ended = active & dones
        self.done |= ended
        if time_outs is not None:
            self.time_out |= ended & time_outs.reshape(-1).to(torch.bool)
        self.lost_dones += int((dones & ~active).sum())
        self.active = active & ~dones
        self.step += 1
        return ended


def merge_logs(logs: list[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
    """Merge per-step ``extras["log"]`` dicts: each key's values (scalars or 1-D) concatenated in step order,
    so that rsl-rl's logger, which averages every key's entries, sees all of them."""
    merged: dict[str, list[torch.Tensor]] = {}
    for log in logs:
        for key, value in log.items():
            tensor = value if isinstance(value, torch.Tensor) else torch.tensor(float(value))
            merged.setdefault(key, []).append(tensor.detach().float().reshape(-1).cpu())
    return {key: torch.cat(values) for key, values in merged.items()}


class MultiStepVecEnv:
    """One ``step`` = one decision: Te actions of a chunk in an rsl-rl ``VecEnv`` (e.g. ``RslRlVecEnvWrapper``).

    ``step(chunks)`` returns ``(obs, rewards, dones, extras)`` like the wrapped env, per decision: rewards summed
    over the Te steps (discounted by ``reward_discount`` per step), dones = any step ended the episode,
    ``extras["time_outs"]`` = that ending was a time limit, ``extras["log"]`` the merged step logs, and
    ``extras["lost_dones"]`` the episodes that ended during padding.
    """

    def __init__(
        self,
        env: Any,
        act_steps: int,
        reward_discount: float = 1.0,
        hold_action_fn: Callable[[TensorDict], torch.Tensor] | None = None,
    ):
        """
        Args:
            env: An rsl-rl ``VecEnv`` (``num_envs``, ``num_actions``, ``device``, ``get_observations``, ``step``).
            act_steps: Te.
            reward_discount: Discount per env step inside a decision.
            hold_action_fn: obs -> Tensor of shape (E, Da), the action of envs whose episode ended earlier in the
                decision (default: zeros).
        """
        self.env = env
        self.num_envs = env.num_envs
        self.num_actions = env.num_actions
        self.device = torch.device(env.device)
        self.act_steps = act_steps
        self.hold_action_fn = hold_action_fn
        self.accumulator = DecisionAccumulator(self.num_envs, act_steps, reward_discount, self.device)

    def get_observations(self) -> TensorDict:
        return self.env.get_observations()

    def _hold(self, obs: TensorDict) -> torch.Tensor:
        if self.hold_action_fn is None:
            return torch.zeros(self.num_envs, self.num_actions, device=self.device)
        return self.hold_action_fn(obs)

    def step(self, chunks: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Execute the first Te actions of each env's chunk.

        Args:
            chunks: Tensor of shape (E, Ta, Da) with Ta >= Te, env units.
        """
        if chunks.ndim != 3 or chunks.shape[0] != self.num_envs or chunks.shape[1] < self.act_steps \
                or chunks.shape[2] != self.num_actions:
            raise ValueError(f"chunks must have shape (E={self.num_envs}, Ta>={self.act_steps}, "
                             f"Da={self.num_actions}), got {tuple(chunks.shape)}")
        acc = self.accumulator
        acc.begin()
        lost_before = acc.lost_dones
        obs = self.env.get_observations()
        logs: list[Mapping[str, Any]] = []
        for j in range(self.act_steps):
            actions = acc.select_actions(chunks[:, j], lambda: self._hold(obs))
            obs, rewards, dones, extras = self.env.step(actions)
            acc.add(rewards, dones, extras.get("time_outs"))
            if isinstance(extras.get("log"), Mapping):
                logs.append(extras["log"])
        out_extras = {
            "time_outs": acc.time_out.clone(),
            "log": merge_logs(logs),
            "lost_dones": acc.lost_dones - lost_before,
        }
        return obs, acc.reward.clone(), acc.done.clone(), out_extras


@torch.no_grad()
def first_episode_returns(
    actor: Any,
    env: Any,
    deterministic: bool = True,
    hold_action_fn: Callable[[TensorDict], torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Return of each env's first episode, one decision per chunk. Tensor of shape (E,).

    Args:
        actor: A :class:`~vt_refine.rl.dppo.actor.DiffusionActor` (``act``, ``act_steps``, ``raw_policy_obs``).
        env: A freshly reset rsl-rl ``VecEnv`` with a finite ``max_episode_length`` (env steps).
        deterministic: The actor's evaluation mode.
        hold_action_fn: Action of envs whose episode ended mid-decision (see :class:`MultiStepVecEnv`).

    Raises:
        RuntimeError: an env did not finish an episode within ``max_episode_length`` env steps.
    """
    multi = MultiStepVecEnv(env, actor.act_steps, hold_action_fn=hold_action_fn)
    returns = torch.zeros(multi.num_envs, device=multi.device)
    finished = torch.zeros(multi.num_envs, dtype=torch.bool, device=multi.device)
    obs = multi.get_observations()
    max_decisions = -(-int(env.max_episode_length) // actor.act_steps) + 1
    for _ in range(max_decisions):
        chunks = actor.act(obs, deterministic=deterministic, generator=generator).actions
        obs, rewards, dones, _ = multi.step(chunks)
        returns += torch.where(finished, torch.zeros_like(rewards), rewards)
        finished |= dones
        if bool(finished.all()):
            break
    if not bool(finished.all()):
        raise RuntimeError(f"{int((~finished).sum())} envs did not finish an episode within {max_decisions} "
                           "decisions; is the env's max_episode_length right?")
    return returns


@torch.no_grad()
def evaluate_first_episodes(
    actor: Any,
    env: Any,
    success_return_threshold: float = SUCCESS_RETURN_THRESHOLD,
    deterministic: bool = True,
    hold_obs_key: str | None = "joint_pos",
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Success rate and mean return of each env's first episode (see :func:`first_episode_returns`).

    Args:
        success_return_threshold: An episode with at least this return counts as a success.
        hold_obs_key: Policy observation whose last frame envs hold after their episode ended mid-decision
            (the action space is that observation's, as in the toy tasks); None repeats the last action.

    Returns:
        {"success_rate", "episode_return", "episodes"} over the E first episodes.
    """
    def hold(obs: TensorDict) -> torch.Tensor:
        return actor.raw_policy_obs(obs)[hold_obs_key][:, -1]

    returns = first_episode_returns(actor, env, deterministic, hold if hold_obs_key is not None else None, generator)
    return {"success_rate": float((returns >= success_return_threshold).float().mean()),
            "episode_return": float(returns.mean()), "episodes": float(returns.numel())}
