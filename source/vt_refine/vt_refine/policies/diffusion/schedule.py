"""Noise schedules of the diffusion policy: pure tensor functions, no modules.

Symbols used in shapes:
    K   denoising steps (100); timestep index t in [0, K), t = 0 is the last (cleanest) step
    Kd  DDIM steps (5)

Conventions (Ho et al. 2020 with 0-based indices): ``betas[t]`` is the variance added when going from
x_t to x_{t+1} in 1-based DDPM notation, ``alphas_cumprod[t] = prod_{s<=t} (1 - betas[s])`` and
``alphas_cumprod_prev[t]`` is the product up to t-1 (1 at t = 0). The forward process is
q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I); the DDPM posterior is
q(x_{t-1} | x_t, x_0) = N(coef1_t x_0 + coef2_t x_t, var_t I).
Everything is computed in float64 and returned in the dtype asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

__all__ = [
    "cosine_beta_schedule",
    "DdpmSchedule",
    "make_ddpm_schedule",
    "ddim_timesteps",
    "DdimSchedule",
    "make_ddim_schedule",
]


def cosine_beta_schedule(num_steps: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Cosine schedule of Nichol & Dhariwal (2021): abar(t) = f(t)/f(0), f(t) = cos^2(((t/K)+s)/(1+s) * pi/2).

    Args:
        num_steps: K.
        s: Small offset keeping beta_1 away from 0 (dimensionless).
        max_beta: Clip of beta so the last step stays invertible.

    Returns:
        Tensor of shape (K,), float64, betas[t] = 1 - abar(t+1)/abar(t) clipped to [0, max_beta].
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    t = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps
    f = torch.cos((t + s) / (1.0 + s) * (math.pi / 2.0)) ** 2
    abar = f / f[0]
    betas = 1.0 - abar[1:] / abar[:-1]
    return betas.clamp(0.0, max_beta)


@dataclass(frozen=True)
class DdpmSchedule:
    """All per-timestep DDPM quantities; every field is a Tensor of shape (K,)."""

    betas: torch.Tensor
    alphas: torch.Tensor
    alphas_cumprod: torch.Tensor
    alphas_cumprod_prev: torch.Tensor
    sqrt_alphas_cumprod: torch.Tensor
    sqrt_one_minus_alphas_cumprod: torch.Tensor
    sqrt_recip_alphas_cumprod: torch.Tensor
    """1 / sqrt(abar_t): x0 = sqrt_recip * x_t - sqrt_recipm1 * eps."""
    sqrt_recipm1_alphas_cumprod: torch.Tensor
    """sqrt(1 / abar_t - 1)."""
    posterior_variance: torch.Tensor
    """var_t = beta_t (1 - abar_{t-1}) / (1 - abar_t); exactly 0 at t = 0."""
    posterior_log_variance_clipped: torch.Tensor
    """log var_t with the t = 0 entry replaced by var_1 (Ho et al.), so it stays finite."""
    posterior_mean_coef1: torch.Tensor
    """Multiplies x0: beta_t sqrt(abar_{t-1}) / (1 - abar_t)."""
    posterior_mean_coef2: torch.Tensor
    """Multiplies x_t: sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t)."""

    def to(self, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> DdpmSchedule:
        return DdpmSchedule(**{f.name: getattr(self, f.name).to(device=device, dtype=dtype) for f in fields(self)})

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def make_ddpm_schedule(betas: torch.Tensor) -> DdpmSchedule:
    """Derive alphas, cumulative products and posterior coefficients from betas (Tensor of shape (K,))."""
    betas = betas.to(torch.float64)
    if betas.ndim != 1 or betas.numel() < 2:
        raise ValueError(f"betas must be a 1-D tensor with at least 2 entries, got shape {tuple(betas.shape)}")
    if not bool(((betas > 0) & (betas < 1)).all()):
        raise ValueError("every beta must lie in (0, 1); check the schedule parameters")
    alphas = 1.0 - betas
    abar = torch.cumprod(alphas, dim=0)
    abar_prev = torch.cat([abar.new_ones(1), abar[:-1]])
    posterior_variance = betas * (1.0 - abar_prev) / (1.0 - abar)
    log_var_clipped = torch.log(torch.cat([posterior_variance[1:2], posterior_variance[1:]]))
    return DdpmSchedule(
        betas=betas,
        alphas=alphas,
        alphas_cumprod=abar,
        alphas_cumprod_prev=abar_prev,
        sqrt_alphas_cumprod=abar.sqrt(),
        sqrt_one_minus_alphas_cumprod=(1.0 - abar).sqrt(),
        sqrt_recip_alphas_cumprod=(1.0 / abar).sqrt(),
        sqrt_recipm1_alphas_cumprod=(1.0 / abar - 1.0).sqrt(),
        posterior_variance=posterior_variance,
        posterior_log_variance_clipped=log_var_clipped,
        posterior_mean_coef1=betas * abar_prev.sqrt() / (1.0 - abar),
        posterior_mean_coef2=alphas.sqrt() * (1.0 - abar_prev) / (1.0 - abar),
    )


def ddim_timesteps(num_steps: int, ddim_steps: int, discretize: str = "trailing") -> torch.Tensor:
    """DDIM timesteps in sampling order (descending).

    "trailing" starts at the noisiest step t = K-1 so x_K ~ N(0, I) matches the schedule
    (Lin et al. 2024, "Common diffusion noise schedules and sample steps are flawed"); "leading" is
    DPPO's ``arange(Kd) * (K // Kd)`` reversed, which starts at a step that is not fully noised.

    Returns:
        Tensor of shape (Kd,), int64, strictly descending, last entry >= 0.
    """
    if not 1 <= ddim_steps <= num_steps:
        raise ValueError(f"ddim_steps must be in [1, {num_steps}], got {ddim_steps}")
    if discretize == "trailing":
        ts = torch.round(torch.arange(num_steps, 0, -num_steps / ddim_steps, dtype=torch.float64)).long() - 1
    elif discretize == "leading":
        ts = torch.arange(ddim_steps, dtype=torch.int64).flip(0) * (num_steps // ddim_steps)
    else:
        raise ValueError(f"ddim discretize must be 'trailing' or 'leading', got '{discretize}'")
    return ts[:ddim_steps]


@dataclass(frozen=True)
class DdimSchedule:
    """DDIM step quantities in sampling order; every field is a Tensor of shape (Kd,)."""

    timesteps: torch.Tensor
    """DDPM timestep index of each DDIM step (descending)."""
    alphas_cumprod: torch.Tensor
    """abar at the step's timestep."""
    alphas_cumprod_prev: torch.Tensor
    """abar at the next (cleaner) DDIM timestep; 1 after the last step."""
    sigmas: torch.Tensor
    """Std of x_{prev} given x_t: eta sqrt((1 - abar_prev)/(1 - abar) (1 - abar/abar_prev))."""

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def make_ddim_schedule(
    alphas_cumprod: torch.Tensor, ddim_steps: int, eta: float = 0.0, discretize: str = "trailing"
) -> DdimSchedule:
    """DDIM sub-schedule (Song et al. 2021) of a DDPM schedule given by ``alphas_cumprod`` (Tensor of shape (K,))."""
    abar_all = alphas_cumprod.to(torch.float64)
    ts = ddim_timesteps(abar_all.numel(), ddim_steps, discretize)
    abar = abar_all[ts]
    abar_prev = torch.cat([abar_all[ts[1:]], abar.new_ones(1)])
    sigmas = eta * ((1.0 - abar_prev) / (1.0 - abar) * (1.0 - abar / abar_prev)).clamp(min=0.0).sqrt()
    return DdimSchedule(timesteps=ts, alphas_cumprod=abar, alphas_cumprod_prev=abar_prev, sigmas=sigmas)
