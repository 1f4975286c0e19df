"""Noise schedule and per-step Gaussians of the diffusion policy against closed forms."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vt_refine.policies.diffusion import (
    DiffusionCfg,
    DiffusionModel,
    DiffusionPolicyCfg,
    PointEncoderCfg,
    StateEncoderCfg,
    UnetCfg,
    cosine_beta_schedule,
    ddim_timesteps,
    make_ddim_schedule,
    make_ddpm_schedule,
)

torch.set_num_threads(1)


def tiny_cfg(**diffusion) -> DiffusionPolicyCfg:
    return DiffusionPolicyCfg(
        num_points=16, horizon_steps=4, act_steps=2, joint_dim=3, action_dim=2,
        point_encoder=PointEncoderCfg(hidden_dims=(8,), out_dim=8),
        state_encoder=StateEncoderCfg(hidden_dims=(8,)),
        unet=UnetCfg(down_dims=(8, 16), diffusion_step_embed_dim=8),
        diffusion=DiffusionCfg(**diffusion),
    )


class FixedNoise(nn.Module):
    """Stands in for the U-Net: always predicts the same epsilon."""

    def __init__(self, eps: torch.Tensor):
        super().__init__()
        self.eps = eps

    def forward(self, x, t, cond):
        return self.eps.expand_as(x)


def test_cosine_schedule_matches_nichol_dhariwal_formula():
    k, s = 100, 0.008
    betas = cosine_beta_schedule(k, s=s)
    abar = torch.cumprod(1 - betas, 0)
    f = lambda t: math.cos((t / k + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    for t in (0, 1, 10, 50, 90, 97):  # 0-based index t holds abar after t+1 steps
        assert abar[t].item() == pytest.approx(f(t + 1) / f(0), rel=1e-10)
    assert bool((betas > 0).all()) and bool((betas <= 0.999).all())
    assert bool((abar[1:] < abar[:-1]).all())  # strictly more noise at every step
    assert betas[-1].item() == pytest.approx(0.999)  # f(K) = 0 -> clipped
    assert abar[-1].item() < 1e-4  # x_K is (almost) pure noise


def test_ddpm_posterior_matches_bayes_rule_at_hand_checked_step():
    sched = make_ddpm_schedule(cosine_beta_schedule(100))
    t = 37
    beta = sched.betas[t].item()
    alpha = 1.0 - beta
    abar_prev = sched.alphas_cumprod[t - 1].item()
    # Bayes: q(x_t | x_{t-1}) = N(sqrt(alpha) x_{t-1}, beta) times
    # q(x_{t-1} | x0) = N(sqrt(abar_prev) x0, 1 - abar_prev), completed square -> precision and mean
    precision = alpha / beta + 1.0 / (1.0 - abar_prev)
    x0, xt = 0.7, -0.4
    mean = (math.sqrt(alpha) * xt / beta + math.sqrt(abar_prev) * x0 / (1.0 - abar_prev)) / precision
    got_mean = sched.posterior_mean_coef1[t].item() * x0 + sched.posterior_mean_coef2[t].item() * xt
    assert got_mean == pytest.approx(mean, rel=1e-10)
    assert sched.posterior_variance[t].item() == pytest.approx(1.0 / precision, rel=1e-10)
    # t = 0: the posterior collapses onto x0; the clipped log-variance stays finite
    assert sched.posterior_variance[0].item() == 0.0
    assert sched.posterior_mean_coef1[0].item() == pytest.approx(1.0)
    assert sched.posterior_mean_coef2[0].item() == pytest.approx(0.0)
    assert math.isfinite(sched.posterior_log_variance_clipped[0].item())


def test_ddim_timesteps_and_schedule():
    assert ddim_timesteps(100, 5, "trailing").tolist() == [99, 79, 59, 39, 19]
    assert ddim_timesteps(100, 5, "leading").tolist() == [80, 60, 40, 20, 0]
    assert ddim_timesteps(10, 10).tolist() == list(range(9, -1, -1))
    abar = torch.cumprod(1 - cosine_beta_schedule(100), 0)
    ddim = make_ddim_schedule(abar, 5, eta=0.0)
    assert ddim.alphas_cumprod_prev.tolist()[-1] == 1.0
    assert torch.equal(ddim.alphas_cumprod_prev[:-1], ddim.alphas_cumprod[1:])
    assert bool((ddim.sigmas == 0).all())
    with pytest.raises(ValueError, match="ddim_steps"):
        ddim_timesteps(100, 0)


def test_p_mean_std_ddpm_is_the_posterior_with_predicted_x0():
    torch.manual_seed(0)
    model = DiffusionModel(tiny_cfg(clip_denoised=False))
    eps = torch.randn(1, 4, 2)
    model.denoiser = FixedNoise(eps)
    x_t = torch.randn(3, 4, 2)
    cond = torch.zeros(3, model.obs_encoder.cond_dim)
    t = 37
    mean, std = model.p_mean_std(x_t, t, cond)
    abar = model.alphas_cumprod[t].double()
    abar_prev = model.alphas_cumprod[t - 1].double()
    beta = model.betas[t].double()
    x0 = (x_t.double() - (1 - abar).sqrt() * eps.double()) / abar.sqrt()
    precision = (1 - beta) / beta + 1 / (1 - abar_prev)
    want = ((1 - beta).sqrt() * x_t.double() / beta + abar_prev.sqrt() * x0 / (1 - abar_prev)) / precision
    torch.testing.assert_close(mean.double(), want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(std.double(), torch.full_like(want, float(precision.rsqrt())), rtol=1e-5, atol=0)
    # tensor timesteps give the same answer as an int
    mean2, _ = model.p_mean_std(x_t, torch.full((3,), t), cond)
    torch.testing.assert_close(mean, mean2)
    # last step: mean is the predicted x0, std exactly 0
    mean0, std0 = model.p_mean_std(x_t, 0, cond)
    x0_at0 = (x_t - model.sqrt_one_minus_alphas_cumprod[0] * eps) / model.sqrt_alphas_cumprod[0]
    torch.testing.assert_close(mean0, x0_at0, rtol=1e-5, atol=1e-5)
    assert bool((std0 == 0).all())


def test_p_mean_std_clips_predicted_x0():
    model = DiffusionModel(tiny_cfg(clip_denoised=True, denoised_clip_value=1.0))
    model.denoiser = FixedNoise(torch.zeros(1, 4, 2))  # eps = 0 -> x0_hat = x_t / sqrt(abar)
    x_t = torch.full((1, 4, 2), 5.0)
    mean, _ = model.p_mean_std(x_t, 0, torch.zeros(1, model.obs_encoder.cond_dim))
    torch.testing.assert_close(mean, torch.ones_like(mean))  # x0 clipped to +1, coef1[0] = 1
    mean_ddim, std_ddim = model.p_mean_std(x_t, 19, torch.zeros(1, model.obs_encoder.cond_dim), ddim=True)
    torch.testing.assert_close(mean_ddim, torch.ones_like(mean_ddim))  # last DDIM step lands on clipped x0
    assert bool((std_ddim == 0).all())


def test_ddim_with_eta_one_and_all_steps_equals_ddpm():
    """Song et al.: with Kd = K and eta = 1 the DDIM step is the DDPM posterior."""
    torch.manual_seed(1)
    model = DiffusionModel(tiny_cfg(denoising_steps=20, ddim_steps=20, ddim_eta=1.0, clip_denoised=False))
    model.denoiser = FixedNoise(torch.randn(1, 4, 2))
    x_t = torch.randn(2, 4, 2)
    cond = torch.zeros(2, model.obs_encoder.cond_dim)
    for t in (19, 10, 1):
        mean_a, std_a = model.p_mean_std(x_t, t, cond, ddim=False)
        mean_b, std_b = model.p_mean_std(x_t, t, cond, ddim=True)
        torch.testing.assert_close(mean_a, mean_b, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(std_a, std_b, rtol=1e-4, atol=1e-6)


def test_ddim_step_rejects_non_ddim_timestep():
    model = DiffusionModel(tiny_cfg())
    x = torch.zeros(1, 4, 2)
    with pytest.raises(ValueError, match=r"DDIM timesteps are \[99, 79, 59, 39, 19\]"):
        model.p_mean_std(x, 50, torch.zeros(1, model.obs_encoder.cond_dim), ddim=True)
    with pytest.raises(ValueError, match="outside"):
        model.p_mean_std(x, 100, torch.zeros(1, model.obs_encoder.cond_dim))
