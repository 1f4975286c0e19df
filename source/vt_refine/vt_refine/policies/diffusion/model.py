"""Diffusion model over normalised action chunks: training loss, per-step Gaussians, DDPM/DDIM samplers.

Symbols used in shapes:
    B   batch
    To  observation history (2)
    Np  points per cloud
    C   point channels (5: x, y, z, value, flag)
    Dq  joint dim (16)
    Ta  chunk length (16)
    Te  executed steps per chunk (8; used by the runner, not here)
    Da  action dim (16)
    Dc  condition size (To * (F + G))
    K   denoising steps (100), timestep t in [0, K), sampling runs t = K-1 ... 0
    Kd  DDIM steps (5)

Everything here works in normalised units: actions in [-1, 1] and joints normalised by the policy's
normalisers (see ``policy.py``); points are raw.

For DPPO: ``p_mean_std(x_t, t, cond, ddim)`` is a pure function of its inputs (plus weights) giving the
Gaussian N(mean, std^2) of the next latent; the sampler and the log-probs of fine-tuning both use it.
``t`` is always the DDPM timestep index (for DDIM it must be one of ``ddim_timesteps``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import DiffusionPolicyCfg
from .encoders import ObservationEncoder
from .schedule import cosine_beta_schedule, make_ddim_schedule, make_ddpm_schedule
from .unet import ConditionalUnet1d

__all__ = ["DiffusionModel"]


class DiffusionModel(nn.Module):
    """Observation encoder + conditional U-Net + DDPM (cosine) schedule with a DDIM sub-schedule."""

    # schedule buffers (Tensor of shape (K,)), registered in __init__
    betas: torch.Tensor
    alphas_cumprod: torch.Tensor
    alphas_cumprod_prev: torch.Tensor
    sqrt_alphas_cumprod: torch.Tensor
    sqrt_one_minus_alphas_cumprod: torch.Tensor
    posterior_variance: torch.Tensor
    posterior_log_variance_clipped: torch.Tensor
    posterior_mean_coef1: torch.Tensor
    posterior_mean_coef2: torch.Tensor
    ddim_timesteps: torch.Tensor  # (Kd,), descending
    ddim_alphas_cumprod_prev_by_t: torch.Tensor  # (K,), valid where is_ddim_timestep
    ddim_sigmas_by_t: torch.Tensor  # (K,)
    is_ddim_timestep: torch.Tensor  # (K,) bool

    def __init__(self, cfg: DiffusionPolicyCfg):
        super().__init__()
        self.cfg = cfg
        dcfg = cfg.diffusion
        self.obs_encoder = ObservationEncoder(cfg)
        self.denoiser = ConditionalUnet1d(cfg.action_dim, self.obs_encoder.cond_dim, cfg.unet)

        ddpm = make_ddpm_schedule(cosine_beta_schedule(dcfg.denoising_steps, dcfg.cosine_s, dcfg.max_beta))
        # Schedules are derived from cfg, so they stay out of the state_dict (persistent=False).
        for name, value in ddpm.as_dict().items():
            self.register_buffer(name, value.float(), persistent=False)
        ddim = make_ddim_schedule(ddpm.alphas_cumprod, dcfg.ddim_steps, dcfg.ddim_eta, dcfg.ddim_discretize)
        num_steps = dcfg.denoising_steps
        abar_prev_by_t = torch.full((num_steps,), float("nan"), dtype=torch.float64)
        sigma_by_t = torch.full((num_steps,), float("nan"), dtype=torch.float64)
        abar_prev_by_t[ddim.timesteps] = ddim.alphas_cumprod_prev
        sigma_by_t[ddim.timesteps] = ddim.sigmas
        is_ddim_t = torch.zeros(num_steps, dtype=torch.bool)
        is_ddim_t[ddim.timesteps] = True
        self.register_buffer("ddim_timesteps", ddim.timesteps, persistent=False)
        self.register_buffer("ddim_alphas_cumprod_prev_by_t", abar_prev_by_t.float(), persistent=False)
        self.register_buffer("ddim_sigmas_by_t", sigma_by_t.float(), persistent=False)
        self.register_buffer("is_ddim_timestep", is_ddim_t, persistent=False)
        # Host copies of the step sequences: the sampling loop must not sync with the device.
        self._timesteps = {"ddpm": list(range(num_steps - 1, -1, -1)), "ddim": ddim.timesteps.tolist()}

    # ------------------------------------------------------------------ conditioning
    def encode_obs(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Condition vector from normalised observations -> Tensor of shape (B, Dc); reuse it across steps."""
        return self.obs_encoder(obs)

    def sampling_timesteps(self, sampler: str = "ddpm") -> list[int]:
        """DDPM timesteps visited by ``sampler`` in order: K-1..0 for "ddpm", the Kd DDIM steps for "ddim"."""
        if sampler not in self._timesteps:
            raise ValueError(f"sampler must be 'ddpm' or 'ddim', got '{sampler}'")
        return list(self._timesteps[sampler])

    # ------------------------------------------------------------------ forward process and loss
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise; x0, noise: (B, Ta, Da), t: (B,) -> (B, Ta, Da)."""
        return _at(self.sqrt_alphas_cumprod, t) * x0 + _at(self.sqrt_one_minus_alphas_cumprod, t) * noise

    def loss(
        self,
        actions_norm: torch.Tensor,
        obs: dict[str, torch.Tensor] | None = None,
        *,
        cond: torch.Tensor | None = None,
        t: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Denoising MSE: epsilon (or x0) regression at a uniformly random timestep.

        Args:
            actions_norm: Normalised action chunks, Tensor of shape (B, Ta, Da).
            obs: Normalised observations (see :class:`ObservationEncoder`); or give ``cond`` directly.
            t: Optional timesteps, int Tensor of shape (B,); drawn uniformly in [0, K) when omitted.
            noise: Optional standard-normal noise, Tensor of shape (B, Ta, Da).
            generator: RNG for t and noise (reproducible training).

        Returns:
            Scalar tensor, mean over batch, chunk and action dims.
        """
        self._check_actions(actions_norm)
        if cond is None:
            if obs is None:
                raise ValueError("loss() needs either obs or cond")
            cond = self.encode_obs(obs)
        batch = actions_norm.shape[0]
        device = actions_norm.device
        if t is None:
            t = torch.randint(0, self.cfg.diffusion.denoising_steps, (batch,), device=device, generator=generator)
        if noise is None:
            noise = torch.randn(actions_norm.shape, device=device, dtype=actions_norm.dtype, generator=generator)
        x_t = self.q_sample(actions_norm, t, noise)
        prediction = self.denoiser(x_t, t, cond)
        target = noise if self.cfg.diffusion.prediction_type == "epsilon" else actions_norm
        return F.mse_loss(prediction, target)

    # ------------------------------------------------------------------ reverse process
    def predict_x0_eps(
        self, x_t: torch.Tensor, t: torch.Tensor | int, cond: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Denoiser output turned into (x0, eps), both Tensor of shape (B, Ta, Da).

        x0 is clipped to +-denoised_clip_value when ``clip_denoised``; eps is then recomputed from the
        clipped x0 so that DDIM stays consistent with it.
        """
        t = self._timestep_tensor(t, x_t)
        dcfg = self.cfg.diffusion
        out = self.denoiser(x_t, t, cond)
        sqrt_abar = _at(self.sqrt_alphas_cumprod, t)
        sqrt_one_minus_abar = _at(self.sqrt_one_minus_alphas_cumprod, t)
        if dcfg.prediction_type == "epsilon":
            eps = out
            x0 = (x_t - sqrt_one_minus_abar * eps) / sqrt_abar
        else:
            x0 = out
            eps = (x_t - sqrt_abar * x0) / sqrt_one_minus_abar
        if dcfg.clip_denoised:
            x0 = x0.clamp(-dcfg.denoised_clip_value, dcfg.denoised_clip_value)
            eps = (x_t - sqrt_abar * x0) / sqrt_one_minus_abar
        return x0, eps

    def p_mean_std(
        self, x_t: torch.Tensor, t: torch.Tensor | int, cond: torch.Tensor, ddim: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Gaussian of the next (cleaner) latent given x_t.

        DDPM: the posterior q(x_{t-1} | x_t, x0_hat) -- mean coef1_t x0_hat + coef2_t x_t, std sqrt(var_t)
        (exactly 0 at t = 0). DDIM: from t to the previous DDIM timestep t' (abar' = 1 after the last),
        mean sqrt(abar') x0_hat + sqrt(1 - abar' - sigma_t^2) eps_hat, std sigma_t (0 when ddim_eta = 0).
        Callers computing log-probs must floor the std themselves (DPPO: min log-prob std).

        Args:
            x_t: Latent, Tensor of shape (B, Ta, Da).
            t: DDPM timestep index, int or int Tensor of shape (B,); with ``ddim`` it must be in ``ddim_timesteps``.
            cond: Condition, Tensor of shape (B, Dc) from :meth:`encode_obs`.
            ddim: Use the DDIM update instead of the DDPM posterior.

        Returns:
            (mean, std): Tensor of shape (B, Ta, Da) each (std is an expanded view, constant per sample).
        """
        t = self._timestep_tensor(t, x_t)
        if ddim and not bool(self.is_ddim_timestep[t].all()):
            raise ValueError(f"DDIM step asked at timestep(s) {sorted(set(t.tolist()))} but the DDIM timesteps "
                             f"are {self._timesteps['ddim']}; pass one of those")
        x0, eps = self.predict_x0_eps(x_t, t, cond)
        if ddim:
            abar_prev = _at(self.ddim_alphas_cumprod_prev_by_t, t)
            sigma = _at(self.ddim_sigmas_by_t, t)
            direction = (1.0 - abar_prev - sigma**2).clamp(min=0.0).sqrt()
            mean = abar_prev.sqrt() * x0 + direction * eps
            std = sigma
        else:
            mean = _at(self.posterior_mean_coef1, t) * x0 + _at(self.posterior_mean_coef2, t) * x_t
            std = _at(self.posterior_variance, t).sqrt()
        return mean, std.expand_as(mean)

    @torch.no_grad()
    def sample(
        self,
        obs: dict[str, torch.Tensor] | None = None,
        sampler: str = "ddpm",
        generator: torch.Generator | None = None,
        deterministic: bool = False,
        return_chain: bool = False,
        min_std: float = 0.0,
        *,
        cond: torch.Tensor | None = None,
        randn_clip_value: float | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Draw normalised action chunks by running the reverse chain from x ~ N(0, I).

        Args:
            obs: Normalised observations; or give ``cond`` (Tensor of shape (B, Dc)) to skip the encoder.
            sampler: "ddpm" (K steps) or "ddim" (Kd steps).
            generator: RNG for the initial latent and the per-step noise (same seed -> same chunk).
            deterministic: Evaluation mode as in DPPO: ``min_std`` is ignored and DDIM steps add no noise;
                DDPM keeps its posterior noise (zero at the last step), since a noise-free DDPM chain
                collapses towards the data mean.
            return_chain: Also return every latent.
            min_std: Floor of the per-step std (DPPO exploration noise, e.g. 0.01-0.1), normalised units.
            randn_clip_value: Clip of the standard-normal draws in std; default from cfg (DPPO uses 3).

        Returns:
            Tensor of shape (B, Ta, Da); with ``return_chain`` also the chain, Tensor of shape
            (B, steps + 1, Ta, Da) starting with the initial noise and ending with the returned chunk.
        """
        if cond is None:
            if obs is None:
                raise ValueError("sample() needs either obs or cond")
            cond = self.encode_obs(obs)
        dcfg = self.cfg.diffusion
        timesteps = self.sampling_timesteps(sampler)
        use_ddim = sampler == "ddim"
        clip = dcfg.randn_clip_value if randn_clip_value is None else randn_clip_value
        batch = cond.shape[0]
        shape = (batch, self.cfg.horizon_steps, self.cfg.action_dim)
        x = torch.randn(shape, device=cond.device, dtype=cond.dtype, generator=generator)
        chain = [x] if return_chain else None
        for i, t in enumerate(timesteps):
            mean, std = self.p_mean_std(x, t, cond, ddim=use_ddim)
            if deterministic:
                std = torch.zeros_like(std) if use_ddim else std
            elif min_std > 0.0:
                std = std.clamp(min=min_std)
            noise = torch.randn(shape, device=cond.device, dtype=cond.dtype, generator=generator).clamp(-clip, clip)
            x = mean + std * noise
            if i == len(timesteps) - 1 and dcfg.final_action_clip_value is not None:
                x = x.clamp(-dcfg.final_action_clip_value, dcfg.final_action_clip_value)
            if chain is not None:
                chain.append(x)
        if chain is not None:
            return x, torch.stack(chain, dim=1)
        return x

    # ------------------------------------------------------------------ helpers
    def _timestep_tensor(self, t: torch.Tensor | int, x: torch.Tensor) -> torch.Tensor:
        """int or (B,) tensor -> int64 Tensor of shape (B,) on x's device."""
        if isinstance(t, int):
            if not 0 <= t < self.cfg.diffusion.denoising_steps:
                raise ValueError(f"timestep {t} outside [0, {self.cfg.diffusion.denoising_steps})")
            return torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        t = t.to(device=x.device, dtype=torch.long)
        if t.shape != (x.shape[0],):
            raise ValueError(f"timesteps must have shape (B,) = ({x.shape[0]},), got {tuple(t.shape)}")
        return t

    def _check_actions(self, actions: torch.Tensor) -> None:
        want = (self.cfg.horizon_steps, self.cfg.action_dim)
        if actions.ndim != 3 or tuple(actions.shape[1:]) != want:
            raise ValueError(f"action chunks must have shape (B, Ta, Da) = (B, {want[0]}, {want[1]}), "
                             f"got {tuple(actions.shape)}")


def _at(table: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Gather per-sample schedule values: table (K,), t (B,) -> Tensor of shape (B, 1, 1)."""
    return table[t].view(-1, 1, 1)
