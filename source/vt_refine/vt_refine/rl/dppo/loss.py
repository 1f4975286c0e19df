"""The PPO pieces of DPPO as pure tensor functions: returns, advantages over the denoising chain, losses.

Symbols used in shapes:
    N   decisions per env in a rollout
    E   envs
    B   batch of (decision, denoising step) pairs
    K   fine-tuned denoising steps; k = 0 is the noisiest of them, k = K - 1 produces the executed chunk
    Ta  chunk length
    Da  action dim

Everything here is per decision: a decision is one chunk (Te env steps merged into one reward).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = [
    "bootstrap_time_outs",
    "generalized_advantages",
    "normalize_advantages",
    "denoising_discount",
    "denoising_clip_schedule",
    "SurrogateResult",
    "clipped_surrogate",
    "value_loss",
    "pretrained_kl",
    "explained_variance",
]


def bootstrap_time_outs(
    rewards: torch.Tensor, time_outs: torch.Tensor, bootstrap_values: torch.Tensor, gamma: float
) -> torch.Tensor:
    """r + gamma * V on decisions that ended on a time-out (the episode was cut, not finished).

    Args:
        rewards, time_outs, bootstrap_values: Tensors of the same shape (E,) or (N, E); time_outs bool or 0/1.
    """
    return rewards + gamma * bootstrap_values * time_outs.to(rewards.dtype)


def generalized_advantages(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    last_values: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE (Schulman et al. 2016) over decisions.

    Args:
        rewards: Tensor of shape (N, E), time-out bootstrap already added.
        values: V(s_n), Tensor of shape (N, E).
        dones: Tensor of shape (N, E); 1 where the episode ended during decision n (no bootstrap across it).
        last_values: V of the observation after the last decision, Tensor of shape (E,).

    Returns:
        (advantages, returns), Tensors of shape (N, E); returns = advantages + values.
    """
    if rewards.shape != values.shape or rewards.shape != dones.shape or last_values.shape != rewards.shape[1:]:
        shapes = [tuple(x.shape) for x in (rewards, values, dones, last_values)]
        raise ValueError(f"GAE needs rewards, values, dones of one shape (N, E) and last_values (E,), got {shapes}")
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(last_values)
    for n in reversed(range(rewards.shape[0])):
        next_values = last_values if n == rewards.shape[0] - 1 else values[n + 1]
        alive = 1.0 - dones[n].to(rewards.dtype)
        delta = rewards[n] + gamma * alive * next_values - values[n]
        running = delta + gamma * lam * alive * running
        advantages[n] = running
    return advantages, advantages + values


def normalize_advantages(advantages: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Zero mean, unit std over all entries (a constant input maps to zeros)."""
    return (advantages - advantages.mean()) / (advantages.std() + eps) if advantages.numel() > 1 else advantages * 0


def denoising_discount(step: torch.Tensor, num_steps: int, gamma_denoising: float) -> torch.Tensor:
    """gamma_denoising^(K - k - 1) per sample: the final step (k = K - 1) gets the full advantage.

    Args:
        step: k, int Tensor of shape (B,).
        num_steps: K.
    """
    return gamma_denoising ** (num_steps - 1 - step).to(torch.float32)


def denoising_clip_schedule(num_steps: int, clip: float, base: float, rate: float) -> torch.Tensor:
    """PPO ratio clip per fine-tuned step: base at k = 0, growing exponentially to ``clip`` at k = K - 1.

    clip_k = base + (clip - base) * (exp(rate * k / (K - 1)) - 1) / (exp(rate) - 1); a single step gets ``clip``.

    Returns:
        Tensor of shape (K,), float32.
    """
    if num_steps == 1:
        return torch.tensor([clip], dtype=torch.float32)
    frac = torch.arange(num_steps, dtype=torch.float64) / (num_steps - 1)
    if rate == 0:
        growth = frac  # the limit of the exponential form for a vanishing rate
    else:
        growth = (torch.exp(rate * frac) - 1.0) / math.expm1(rate)
    return (base + (clip - base) * growth).float()


@dataclass
class SurrogateResult:
    """Clipped PPO surrogate of a batch and its diagnostics."""

    loss: torch.Tensor
    """Scalar, to minimise."""
    ratio: torch.Tensor
    """Tensor of shape (B,), detached."""
    approx_kl: torch.Tensor
    """Scalar, detached: mean of (ratio - 1) - log ratio (Schulman's k3 estimator, >= 0)."""
    clipped: torch.Tensor
    """Bool Tensor of shape (B,): |ratio - 1| exceeds the sample's clip."""


def clipped_surrogate(
    new_log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor, clip: torch.Tensor
) -> SurrogateResult:
    """PPO's clipped policy loss, mean over the batch of max(-A r, -A clip(r, 1 - c, 1 + c)).

    Args:
        new_log_prob: Tensor of shape (B,), differentiable.
        old_log_prob: Tensor of shape (B,), from the rollout.
        advantages: Tensor of shape (B,), already normalised and denoising-discounted.
        clip: Per-sample clip c, Tensor of shape (B,) (from :func:`denoising_clip_schedule`).
    """
    log_ratio = new_log_prob - old_log_prob
    ratio = log_ratio.exp()
    unclipped = -advantages * ratio
    clipped = -advantages * torch.maximum(torch.minimum(ratio, 1.0 + clip), 1.0 - clip)
    loss = torch.maximum(unclipped, clipped).mean()
    with torch.no_grad():
        approx_kl = ((ratio - 1.0) - log_ratio).mean()
        is_clipped = (ratio - 1.0).abs() > clip
    return SurrogateResult(loss=loss, ratio=ratio.detach(), approx_kl=approx_kl, clipped=is_clipped)


def value_loss(
    values: torch.Tensor, returns: torch.Tensor, old_values: torch.Tensor, clip: float | None = None
) -> torch.Tensor:
    """0.5 * mean (V - R)^2; with ``clip`` the PPO pessimistic form around the rollout values. Tensors (B,)."""
    loss = (values - returns) ** 2
    if clip is not None:
        clipped_values = old_values + (values - old_values).clamp(-clip, clip)
        loss = torch.maximum(loss, (clipped_values - returns) ** 2)
    return 0.5 * loss.mean()


def pretrained_kl(mean: torch.Tensor, pretrained_mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Regulariser towards the pre-trained policy: KL between the fine-tuned and the frozen denoising step.

    Both steps are Gaussians with the same std at the same latent, so the KL per element is
    (mean - pretrained_mean)^2 / (2 std^2) -- a std-weighted MSE between the two denoisers' predicted means.
    It is the expectation of DPPO's BC loss (-log-prob of the frozen policy's samples under the fine-tuned
    one) minus a constant, so it has the same gradient on average but needs no extra sampling and has no
    variance. Averaged over the whole chunk (Ta x Da): the non-executed tail gets no surrogate gradient, so this
    is the only thing keeping it near the pre-trained chunk.

    Args:
        mean: Fine-tuned step mean, Tensor of shape (B, Ta, Da), differentiable.
        pretrained_mean: Frozen step mean at the same latents, Tensor of shape (B, Ta, Da).
        std: Step std (floored), Tensor of shape (B, Ta, Da).

    Returns:
        Scalar, nats per element.
    """
    return (((mean - pretrained_mean) / std) ** 2).mean() * 0.5


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float:
    """1 - Var(R - V) / Var(R): 1 for a perfect critic, 0 for a constant one, NaN when the returns are constant."""
    var_returns = returns.var()
    if not bool(var_returns > 0):
        return float("nan")
    return float(1.0 - (returns - values).var() / var_returns)
