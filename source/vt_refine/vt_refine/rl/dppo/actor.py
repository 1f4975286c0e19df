"""The pre-trained diffusion policy as a PPO actor: per-denoising-step Gaussians and their log-probs.

Symbols used in shapes:
    E   envs (one decision each)
    B   batch of (decision, denoising step) pairs in the PPO update
    To  observation history
    S   denoising steps of the chosen sampler (K_total = 100 for DDPM, Kd for DDIM)
    K   fine-tuned denoising steps (the last K of the S), k = 0 is the noisiest of them
    Ta  predicted chunk length
    Te  executed steps of a chunk (first Te of Ta)
    Da  action dim

DPPO's view (Ren et al. 2024): every denoising step x_k -> x_{k+1} is an action of an inner MDP with the
Gaussian policy N(mean_theta(x_k, t_k, obs), std_k^2). A frozen copy of the pre-trained policy runs the first
S - K steps; a trainable copy runs the last K, and only those carry log-probs. Latents live in normalised
action units ([-1, 1]); the chunk handed to the env is unnormalised by the pre-trained policy's normaliser.

Log-probs: the element-wise Gaussian log-density with the std floored at ``min_logprob_std`` (clamped to
``logprob_clip``), averaged over the executed part of the chunk only (Te x Da elements) -- the part whose
consequences the reward measures. The mean rather than the sum keeps the PPO ratio a geometric mean of
per-element ratios, so that the small clip values of DPPO (1e-3 .. 1e-2) stay meaningful.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from tensordict import TensorDict
from torch import nn

from vt_refine.policies.diffusion import DiffusionModel, DiffusionPolicy

__all__ = ["ActorOutput", "StepEval", "DiffusionActor", "gaussian_log_prob", "executed_log_prob"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Element-wise log N(x; mean, std^2); all Tensors of the same shape (std > 0)."""
    return -0.5 * ((x - mean) / std) ** 2 - std.log() - _HALF_LOG_2PI


def executed_log_prob(
    elementwise: torch.Tensor, act_steps: int, clip: tuple[float, float] | None = None
) -> torch.Tensor:
    """Per-sample log-prob of a denoising step over the executed part of the chunk.

    Args:
        elementwise: Element-wise log-densities, Tensor of shape (B, Ta, Da).
        act_steps: Te; only chunk steps [0, Te) count.
        clip: Optional (min, max) clamp of every element before averaging (DPPO: (-5, 2)).

    Returns:
        Tensor of shape (B,): mean over the Te x Da executed elements.
    """
    if clip is not None:
        elementwise = elementwise.clamp(clip[0], clip[1])
    return elementwise[:, :act_steps].mean(dim=(1, 2))


@dataclass
class ActorOutput:
    """One decision per env, as sampled by :meth:`DiffusionActor.act`."""

    actions: torch.Tensor
    """Tensor of shape (E, Ta, Da): the chunk in env units (first Te steps are executed)."""
    chains: torch.Tensor
    """Tensor of shape (E, K + 1, Ta, Da): the latents entering the K fine-tuned steps plus the final one
    (normalised units); chains[:, 0] is the output of the frozen steps."""
    log_probs: torch.Tensor
    """Tensor of shape (E, K): log-prob of chains[:, k + 1] given chains[:, k] under the fine-tuned step k."""
    cond: torch.Tensor | None = None
    """Tensor of shape (E, Dc): the observation condition, when the encoder is frozen (then it is the same for the
    frozen and the fine-tuned copy, and the update can reuse it instead of encoding the points again)."""


@dataclass
class StepEval:
    """What the PPO loss needs about a batch of stored denoising steps under the current weights."""

    log_prob: torch.Tensor
    """Tensor of shape (B,): executed-part log-prob under the fine-tuned denoiser (differentiable)."""
    mean: torch.Tensor
    """Tensor of shape (B, Ta, Da): fine-tuned step mean (differentiable)."""
    std: torch.Tensor
    """Tensor of shape (B, Ta, Da): the log-prob std (floored at ``min_logprob_std``); weights don't change it."""
    pretrained_mean: torch.Tensor | None = None
    """Tensor of shape (B, Ta, Da): the frozen policy's step mean at the same latents, when asked for."""


class DiffusionActor(nn.Module):
    """A frozen pre-trained :class:`DiffusionPolicy` plus a trainable copy of its model for the last K steps.

    The actor reads one rsl-rl observation group (``obs_group``): a TensorDict holding the policy's keys
    (``joint_pos`` (E, To, Dq), ``point_cloud`` (E, To, Np, C), optional ``point_mask``), history already
    stacked by the env. A flat group (E, To * Dq) is accepted for a policy with a single observation key.
    """

    is_recurrent: bool = False
    """rsl-rl asks every model this."""

    def __init__(
        self,
        policy: DiffusionPolicy,
        obs_group: str = "policy",
        *,
        sampler: str = "ddpm",
        ft_denoising_steps: int = 5,
        act_steps: int | None = None,
        min_sampling_std: float = 0.01,
        min_logprob_std: float = 0.1,
        randn_clip_value: float = 3.0,
        logprob_clip: tuple[float, float] | list[float] | None = (-5.0, 2.0),
        ddim_eta: float | None = None,
        train_obs_encoder: bool = True,
    ):
        """
        Args:
            policy: The pre-trained policy (weights are copied; the object itself becomes the frozen copy).
            obs_group: Name of the observation group holding the policy's keys.
            The other arguments are documented in :class:`~vt_refine.rl.dppo.config.DiffusionActorCfg`.
        """
        super().__init__()
        pcfg = policy.cfg
        if sampler not in ("ddpm", "ddim"):
            raise ValueError(f"actor.sampler must be 'ddpm' or 'ddim', got '{sampler}'")
        if ddim_eta is not None:
            if ddim_eta < 0:
                raise ValueError(f"actor.ddim_eta must be >= 0, got {ddim_eta}")
            policy = _with_ddim_eta(policy, float(ddim_eta))
            pcfg = policy.cfg
        num_steps = len(policy.model.sampling_timesteps(sampler))
        if not 1 <= ft_denoising_steps <= num_steps:
            raise ValueError(f"actor.ft_denoising_steps must be in [1, {num_steps}] (the '{sampler}' chain of the "
                             f"pre-trained policy has {num_steps} steps), got {ft_denoising_steps}")
        act_steps = pcfg.act_steps if act_steps is None else int(act_steps)
        if not 1 <= act_steps <= pcfg.horizon_steps:
            raise ValueError(f"actor.act_steps must be in [1, Ta={pcfg.horizon_steps}], got {act_steps}")
        if min_sampling_std < 0 or min_logprob_std <= 0:
            raise ValueError(f"actor.min_sampling_std must be >= 0 and actor.min_logprob_std > 0, got "
                             f"{min_sampling_std} and {min_logprob_std}")
        if randn_clip_value <= 0:
            raise ValueError(f"actor.randn_clip_value must be > 0, got {randn_clip_value}")
        if logprob_clip is not None:
            logprob_clip = (float(logprob_clip[0]), float(logprob_clip[1]))
            if not logprob_clip[0] < logprob_clip[1]:
                raise ValueError(f"actor.logprob_clip must be (min, max) with min < max, got {logprob_clip}")

        self.cfg = pcfg
        self.obs_group = obs_group
        self.sampler = sampler
        self.use_ddim = sampler == "ddim"
        self.ft_denoising_steps = int(ft_denoising_steps)
        self.act_steps = act_steps
        self.min_sampling_std = float(min_sampling_std)
        self.min_logprob_std = float(min_logprob_std)
        self.randn_clip_value = float(randn_clip_value)
        self.logprob_clip = logprob_clip

        # the trainable copy is taken before freezing, so its parameters keep requires_grad
        self.finetuned: DiffusionModel = copy.deepcopy(policy.model).train()
        if not train_obs_encoder:
            self.finetuned.obs_encoder.requires_grad_(False)
        self.caches_condition = not train_obs_encoder
        """With a frozen encoder both copies encode alike: :meth:`act` returns the condition for reuse."""
        self.pretrained: DiffusionPolicy = policy.eval().requires_grad_(False)

        timesteps = policy.model.sampling_timesteps(sampler)
        self._frozen_timesteps = timesteps[: num_steps - self.ft_denoising_steps]  # host list: no device sync
        self._ft_timesteps = timesteps[num_steps - self.ft_denoising_steps:]
        self.register_buffer("ft_timesteps", torch.tensor(self._ft_timesteps, dtype=torch.long), persistent=False)
        self.obs_keys = tuple(pcfg.obs_shapes)
        # per-step inference state of forward() (play / evaluation in a per-step loop)
        self._play_chunk: torch.Tensor | None = None
        self._play_cursor: torch.Tensor | None = None

    # ------------------------------------------------------------------ observations
    def raw_policy_obs(self, obs: TensorDict | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The policy's observation keys in env units, read from the actor's group of an rsl-rl TensorDict."""
        if self.obs_group not in obs.keys():
            raise ValueError(f"observation group '{self.obs_group}' is missing; the env gives groups "
                             f"{list(obs.keys())}")
        group = obs[self.obs_group]
        if isinstance(group, torch.Tensor):
            return self._unflatten_group(group)
        out = {}
        for key in self.obs_keys:
            if key not in group.keys():
                raise ValueError(f"observation group '{self.obs_group}' lacks '{key}' needed by the diffusion policy; "
                                 f"it holds {list(group.keys())}")
            out[key] = group[key]
        if "point_mask" in group.keys():
            out["point_mask"] = group["point_mask"]
        return out

    def _unflatten_group(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """(E, prod(shape)) -> {key: (E, *shape)}; only a single-key policy can be read from a flat group."""
        shapes = self.cfg.obs_shapes
        if len(shapes) != 1:
            raise ValueError(f"observation group '{self.obs_group}' is a flat tensor of shape {tuple(flat.shape)}, but "
                             f"the diffusion policy needs the separate keys {list(shapes)}; set "
                             "concatenate_terms=False for that group")
        (key, shape), = shapes.items()
        if flat.ndim != 2 or flat.shape[1] != math.prod(shape):
            raise ValueError(f"observation group '{self.obs_group}' has shape {tuple(flat.shape)}; the diffusion "
                             f"policy expects '{key}' of per-env shape {shape} (= {math.prod(shape)} values)")
        # Isaac Lab flattens history oldest-first, term by term: a reshape restores (E, To, Dq)
        return {key: flat.reshape(flat.shape[0], *shape)}

    def normalized_obs(self, obs: TensorDict | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Policy inputs as the diffusion model expects them (joints normalised, points raw)."""
        return self.pretrained.normalize_obs(self.raw_policy_obs(obs))

    # ------------------------------------------------------------------ sampling
    def _sample_std(self, std: torch.Tensor, deterministic: bool) -> torch.Tensor:
        if deterministic:
            # evaluation as in DPPO: DDIM drops its noise; DDPM keeps the posterior noise (its chain needs it)
            return torch.zeros_like(std) if self.use_ddim else std
        return std.clamp(min=self.min_sampling_std)

    def _draw(self, shape: torch.Size, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        noise = torch.randn(shape, device=like.device, dtype=like.dtype, generator=generator)
        return noise.clamp(-self.randn_clip_value, self.randn_clip_value)

    @torch.no_grad()
    def act(
        self,
        obs: TensorDict | Mapping[str, torch.Tensor],
        deterministic: bool = False,
        generator: torch.Generator | None = None,
    ) -> ActorOutput:
        """Sample one chunk per env, keeping the fine-tuned part of the chain and its log-probs.

        Args:
            obs: rsl-rl observations (the actor's group is read).
            deterministic: Evaluation mode (no sampling-std floor; DDIM steps noise-free).
            generator: RNG of the initial latent and the per-step noise (same seed -> same frozen steps).
        """
        norm = self.normalized_obs(obs)
        final_clip = self.cfg.diffusion.final_action_clip_value
        last_t = self._ft_timesteps[-1]

        # frozen steps: the pre-trained model, never touched by the optimiser
        model = self.pretrained.model
        cond = model.encode_obs(norm)
        shared = cond if self.caches_condition else None
        shape = torch.Size((cond.shape[0], self.cfg.horizon_steps, self.cfg.action_dim))
        x = torch.randn(shape, device=cond.device, dtype=cond.dtype, generator=generator)
        for t in self._frozen_timesteps:
            mean, std = model.p_mean_std(x, t, cond, ddim=self.use_ddim)
            x = mean + self._sample_std(std, deterministic) * self._draw(shape, x, generator)

        # fine-tuned steps: the trainable copy, with log-probs under the floored std
        cond = shared if shared is not None else self.finetuned.encode_obs(norm)
        chain, log_probs = [x], []
        for t in self._ft_timesteps:
            mean, std = self.finetuned.p_mean_std(x, t, cond, ddim=self.use_ddim)
            x = mean + self._sample_std(std, deterministic) * self._draw(shape, x, generator)
            if t == last_t and final_clip is not None:
                x = x.clamp(-final_clip, final_clip)
            elementwise = gaussian_log_prob(x, mean, std.clamp(min=self.min_logprob_std))
            log_probs.append(executed_log_prob(elementwise, self.act_steps, self.logprob_clip))
            chain.append(x)
        return ActorOutput(
            actions=self.pretrained.decode_actions(x, self.raw_policy_obs(obs)),
            chains=torch.stack(chain, dim=1),
            log_probs=torch.stack(log_probs, dim=1),
            cond=shared,
        )

    # ------------------------------------------------------------------ log-probs for the update
    def evaluate_steps(
        self,
        obs: TensorDict | Mapping[str, torch.Tensor],
        x_prev: torch.Tensor,
        x_next: torch.Tensor,
        step: torch.Tensor,
        with_pretrained: bool = False,
        cond: torch.Tensor | None = None,
    ) -> StepEval:
        """Log-probs of stored denoising steps under the current trainable denoiser.

        Args:
            obs: rsl-rl observations of the B decisions (TensorDict with batch size B); unused with ``cond``.
            x_prev: Latents entering the steps, Tensor of shape (B, Ta, Da) (``chains[:, k]``).
            x_next: Latents the steps produced, Tensor of shape (B, Ta, Da) (``chains[:, k + 1]``).
            step: Fine-tuned step index k in [0, K), int Tensor of shape (B,).
            with_pretrained: Also return the frozen policy's step mean at the same latents (no gradient).
            cond: The decisions' condition from :meth:`act` (frozen encoder only), Tensor of shape (B, Dc).
        """
        if step.shape != (x_prev.shape[0],) or x_prev.shape != x_next.shape:
            raise ValueError(f"evaluate_steps needs x_prev, x_next of the same shape (B, Ta, Da) and step of shape "
                             f"(B,), got {tuple(x_prev.shape)}, {tuple(x_next.shape)} and {tuple(step.shape)}")
        if bool((step < 0).any()) or bool((step >= self.ft_denoising_steps).any()):
            raise ValueError(f"denoising step indices must lie in [0, K={self.ft_denoising_steps})")
        if cond is not None and not self.caches_condition:
            raise ValueError("a stored condition can only stand in for the observations when the encoder is frozen "
                             "(actor.train_obs_encoder=False)")
        norm = None if cond is not None else self.normalized_obs(obs)
        t = self.ft_timesteps[step]
        ft_cond = cond if cond is not None else self.finetuned.encode_obs(norm)
        mean, std = self.finetuned.p_mean_std(x_prev, t, ft_cond, ddim=self.use_ddim)
        std = std.clamp(min=self.min_logprob_std)
        log_prob = executed_log_prob(gaussian_log_prob(x_next, mean, std), self.act_steps, self.logprob_clip)
        pretrained_mean = None
        if with_pretrained:
            with torch.no_grad():
                model = self.pretrained.model
                frozen_cond = cond if cond is not None else model.encode_obs(norm)
                pretrained_mean, _ = model.p_mean_std(x_prev, t, frozen_cond, ddim=self.use_ddim)
        return StepEval(log_prob=log_prob, mean=mean, std=std, pretrained_mean=pretrained_mean)

    # ------------------------------------------------------------------ rsl-rl model interface
    def train(self, mode: bool = True) -> DiffusionActor:
        super().train(mode)
        self.pretrained.eval()  # the frozen copy never leaves eval mode
        return self

    @torch.no_grad()
    def pretrained_fingerprint(self) -> torch.Tensor:
        """Per-tensor sums of the frozen policy's state (float64, CPU): identifies the pre-trained weights that
        a checkpoint's fine-tuned copy belongs to, without storing them again."""
        return torch.stack([value.detach().double().sum().cpu() for value in self.pretrained.state_dict().values()])

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters of the fine-tuned copy that the optimiser moves."""
        return [p for p in self.finetuned.parameters() if p.requires_grad]

    @property
    def output_std(self) -> torch.Tensor:
        """Sampling std of each fine-tuned step (floored), Tensor of shape (K,); rsl-rl logs its mean."""
        model = self.finetuned
        if self.use_ddim:
            std = model.ddim_sigmas_by_t[self.ft_timesteps]
        else:
            std = model.posterior_variance[self.ft_timesteps].sqrt()
        return std.clamp(min=self.min_sampling_std)

    def forward(self, obs: TensorDict, **_: object) -> torch.Tensor:
        """Per-step deterministic inference (``runner.get_inference_policy()``): executes each env's chunk for
        Te steps, then re-plans; :meth:`reset` makes the given envs re-plan at their next step.

        Returns:
            Tensor of shape (E, Da), env units.
        """
        num_envs = obs.batch_size[0]
        if self._play_cursor is None or self._play_cursor.shape[0] != num_envs:
            self._play_cursor = torch.full((num_envs,), self.act_steps, dtype=torch.long, device=obs.device)
            self._play_chunk = torch.zeros(num_envs, self.cfg.horizon_steps, self.cfg.action_dim, device=obs.device)
        need = self._play_cursor >= self.act_steps
        if bool(need.any()):
            self._play_chunk[need] = self.act(obs[need], deterministic=True).actions
            self._play_cursor[need] = 0
        action = self._play_chunk[torch.arange(num_envs, device=obs.device), self._play_cursor]
        self._play_cursor += 1
        return action

    def reset(self, dones: torch.Tensor | None = None, hidden_state: object = None) -> None:
        """Make the done envs (all when None) re-plan at their next :meth:`forward` step."""
        if self._play_cursor is None:
            return
        if dones is None:
            self._play_cursor.fill_(self.act_steps)
        else:
            self._play_cursor[dones.to(torch.bool).reshape(-1)] = self.act_steps

    def get_hidden_state(self) -> None:
        return None

    def as_jit(self) -> nn.Module:
        raise NotImplementedError("the DPPO diffusion actor cannot be exported to TorchScript (its chain mixes a "
                                  "frozen and a fine-tuned denoiser); run it in Python with "
                                  "runner.get_inference_policy()")

    def as_onnx(self, verbose: bool = False) -> nn.Module:
        raise NotImplementedError("the DPPO diffusion actor cannot be exported to ONNX")


def _with_ddim_eta(policy: DiffusionPolicy, eta: float) -> DiffusionPolicy:
    """Same weights, DDIM sigmas rebuilt for ``eta`` (the schedule buffers derive from cfg, not the state dict)."""
    cfg = dataclasses.replace(policy.cfg, diffusion=dataclasses.replace(policy.cfg.diffusion, ddim_eta=eta))
    rebuilt = DiffusionPolicy(cfg)
    rebuilt.load_state_dict(policy.state_dict())
    param = next(policy.parameters(), None)
    return rebuilt.to(param.device if param is not None else "cpu")
