"""Rollout storage of DPPO: one entry per decision (not per env step), mini-batches of denoising steps.

Symbols used in shapes:
    N   decisions per env per iteration
    E   envs
    K   fine-tuned denoising steps
    Ta  chunk length
    Da  action dim
    B   mini-batch of (decision, denoising step) pairs

Buffers are allocated once, outside ``torch.inference_mode`` (rsl-rl's runner collects rollouts inside it),
and filled in place, so the update can differentiate through computations on them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from tensordict import TensorDict

__all__ = ["DecisionBatch", "DecisionStorage"]


@dataclass
class DecisionBatch:
    """A mini-batch of B (decision, fine-tuned denoising step) pairs."""

    observations: TensorDict
    """Observations of the B decisions (batch size B)."""
    x_prev: torch.Tensor
    """Tensor of shape (B, Ta, Da): latent entering the step."""
    x_next: torch.Tensor
    """Tensor of shape (B, Ta, Da): latent the step produced."""
    step: torch.Tensor
    """Tensor of shape (B,), int64: fine-tuned step index k."""
    old_log_prob: torch.Tensor
    """Tensor of shape (B,): log-prob at rollout time."""
    advantages: torch.Tensor
    """Tensor of shape (B,): normalised decision advantages (not yet denoising-discounted)."""
    returns: torch.Tensor
    """Tensor of shape (B,)."""
    values: torch.Tensor
    """Tensor of shape (B,): critic values at rollout time."""
    cond: torch.Tensor | None = None
    """Tensor of shape (B, Dc): the decisions' observation condition, when the actor caches it."""


class DecisionStorage:
    """N decisions of E envs: observations, denoising chains, per-step log-probs, rewards, dones, values."""

    def __init__(self, num_envs: int, num_decisions: int, obs: TensorDict, num_ft_steps: int,
                 horizon_steps: int, action_dim: int, device: torch.device | str = "cpu", cond_dim: int = 0):
        """
        Args:
            num_envs: E.
            num_decisions: N.
            obs: An observation TensorDict of batch size (E,) (only the groups the models read); its layout
                sets the buffers'.
            num_ft_steps: K.
            horizon_steps, action_dim: Ta, Da.
            cond_dim: Dc of the actor's cached condition (0: none cached; the actor re-encodes observations).
        """
        if num_decisions < 1:
            raise ValueError(f"num_decisions must be >= 1, got {num_decisions}")
        self.num_envs, self.num_decisions, self.num_ft_steps = num_envs, num_decisions, num_ft_steps
        self.device = torch.device(device)
        n, e = num_decisions, num_envs
        self.observations = torch.zeros_like(obs.to(self.device).unsqueeze(0).expand(n, e))
        self.chains = torch.zeros(n, e, num_ft_steps + 1, horizon_steps, action_dim, device=self.device)
        self.log_probs = torch.zeros(n, e, num_ft_steps, device=self.device)
        self.values = torch.zeros(n, e, device=self.device)
        self.rewards = torch.zeros(n, e, device=self.device)
        self.dones = torch.zeros(n, e, device=self.device)
        self.time_outs = torch.zeros(n, e, device=self.device)
        self.advantages = torch.zeros(n, e, device=self.device)
        self.returns = torch.zeros(n, e, device=self.device)
        self.conds = torch.zeros(n, e, cond_dim, device=self.device) if cond_dim > 0 else None
        self.step = 0
        """Decisions stored so far (the next slot)."""

    @property
    def full(self) -> bool:
        return self.step >= self.num_decisions

    def start_decision(self, obs: TensorDict, chains: torch.Tensor, log_probs: torch.Tensor,
                       values: torch.Tensor, cond: torch.Tensor | None = None) -> None:
        """Store what is known when the decision is taken (copied: env buffers may be reused)."""
        if self.full:
            raise RuntimeError(f"storage holds {self.num_decisions} decisions already; run the update first")
        if (cond is None) != (self.conds is None):
            raise ValueError("the storage was built to hold the actor's condition iff the actor caches it")
        if cond is not None:
            self.conds[self.step].copy_(cond)
        self.observations[self.step] = obs.select(*self.observations.keys()).to(self.device)
        self.chains[self.step].copy_(chains)
        self.log_probs[self.step].copy_(log_probs)
        self.values[self.step].copy_(values.reshape(-1))

    def end_decision(self, rewards: torch.Tensor, dones: torch.Tensor, time_outs: torch.Tensor) -> None:
        """Store the decision's outcome and move to the next slot."""
        self.rewards[self.step].copy_(rewards)
        self.dones[self.step].copy_(dones)
        self.time_outs[self.step].copy_(time_outs)
        self.step += 1

    def clear(self) -> None:
        self.step = 0

    def mini_batches(self, mini_batch_size: int, num_epochs: int,
                     generator: torch.Generator | None = None) -> Iterator[tuple[int, DecisionBatch]]:
        """Yield (epoch, batch) over shuffled (decision, step) pairs; every epoch visits each pair at most once.

        Pairs left over after the last full mini-batch of an epoch are skipped (DPPO does the same); when
        there are fewer pairs than ``mini_batch_size`` one batch holds them all.
        """
        if not self.full:
            raise RuntimeError(f"storage holds {self.step} of {self.num_decisions} decisions; finish the rollout")
        num_k = self.num_ft_steps
        total = self.num_decisions * self.num_envs * num_k
        size = min(mini_batch_size, total)
        obs = self.observations.flatten(0, 1)
        chains = self.chains.flatten(0, 1)
        log_probs = self.log_probs.flatten(0, 1)
        flat = {name: getattr(self, name).flatten() for name in ("advantages", "returns", "values")}
        conds = self.conds.flatten(0, 1) if self.conds is not None else None
        for epoch in range(num_epochs):
            order = torch.randperm(total, generator=generator).to(self.device)
            for start in range(0, total - size + 1, size):
                index = order[start:start + size]
                decision, step = index // num_k, index % num_k
                yield epoch, DecisionBatch(
                    observations=obs[decision],
                    x_prev=chains[decision, step],
                    x_next=chains[decision, step + 1],
                    step=step,
                    old_log_prob=log_probs[decision, step],
                    advantages=flat["advantages"][decision],
                    returns=flat["returns"][decision],
                    values=flat["values"][decision],
                    cond=conds[decision] if conds is not None else None,
                )
