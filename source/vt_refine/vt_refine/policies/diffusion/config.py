"""Configuration of the visuo-tactile diffusion policy and of its behaviour-cloning pre-training.

Shape symbols (B, To, Np, C, Dq, Ta, Te, Da, K, Kd) as in the legend of :mod:`.model`.

These are plain dataclasses (the policy is not part of an Isaac Lab scene cfg). Every class has
``from_dict`` / ``to_dict`` so that the same values round-trip through ``config/<name>.yaml`` and
checkpoints. Numbers come from /work/shared/design/vt-refine-facts.md; "(inferred)" marks our reading
where the paper is silent.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "ConfigError",
    "PointEncoderCfg",
    "StateEncoderCfg",
    "UnetCfg",
    "DiffusionCfg",
    "DiffusionPolicyCfg",
    "PretrainCfg",
    "DiffusionProfile",
]

_T = TypeVar("_T", bound="_CfgBase")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range."""


class _CfgBase:
    """Mixin: recursive, validating conversion from/to plain dicts (YAML, checkpoints)."""

    @classmethod
    def from_dict(cls: type[_T], data: dict[str, Any] | None, *, section: str | None = None) -> _T:
        """Build the config from a dict; unknown keys and wrong types raise :class:`ConfigError`.

        Args:
            data: Mapping of field name to value (nested dicts for nested configs). ``None`` = defaults.
            section: Dotted name used in error messages (e.g. ``"policy.unet"``).
        """
        section = section or cls.__name__
        if data is None:
            data = {}
        if dataclasses.is_dataclass(data) and isinstance(data, cls):
            return data
        if not isinstance(data, dict):
            raise ConfigError(f"config section '{section}' must be a mapping, got {type(data).__name__}: {data!r}")
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(
                f"unknown key(s) {unknown} in config section '{section}'; valid keys are {sorted(names)}"
            )
        kwargs = {key: _coerce(value, hints[key], f"{section}.{key}") for key, value in data.items()}
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain-python dict (tuples become lists) suitable for YAML and ``torch.load(weights_only=True)``."""
        return _to_plain(dataclasses.asdict(self))  # type: ignore[call-overload]


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Convert a YAML value to the annotated type, or raise ConfigError naming the field."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"'{where}' has an invalid value {value!r}")
    if isinstance(hint, type) and issubclass(hint, _CfgBase):
        return hint.from_dict(value, section=where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"'{where}' must be a list, got {value!r}")
        args = typing.get_args(hint)
        item_hint = args[0] if args else Any
        return tuple(_coerce(v, item_hint, f"{where}[{i}]") for i, v in enumerate(value))
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"'{where}' must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"'{where}' must be an integer, got {value!r}")
        return value
    if hint is float:
        # PyYAML reads "1e-4" (no dot) as a string; accept it rather than make users write 1.0e-4.
        if isinstance(value, bool):
            raise ConfigError(f"'{where}' must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"'{where}' must be a number, got {value!r}") from None
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"'{where}' must be a string, got {value!r}")
        return value
    return value


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass
class PointEncoderCfg(_CfgBase):
    """PointNet over C-channel points: shared per-point MLP, max-pool over points, projection."""

    hidden_dims: tuple[int, ...] = (64, 128, 256, 512)
    """Widths of the shared per-point MLP layers (paper: 64/128/256/512)."""
    out_dim: int = 64
    """Feature size per observation step after max-pool and projection (paper: 64)."""
    use_layer_norm: bool = True
    """LayerNorm after every hidden layer and after the projection (paper: yes)."""
    visual_stride: int = 1
    """Read every n-th visual point (1: all, paper). The env's cloud is already a uniform random subsample of the
    camera's points, so a stride keeps a uniform random subset; deterministic, so DPPO's recomputed log-probs see
    the same input as its rollout. The encoder's cost is linear in the points it reads."""
    tactile_pool: int = 1
    """Pool each pad's taxel grid over n x n blocks before reading it (1: every taxel, paper): a block becomes one
    point at its mean position with its largest value. Most taxels read zero; 2 keeps 384 of 1536 points."""
    tactile_grid: tuple[int, int, int] = (4, 12, 32)
    """Pads x rows x columns of the taxel points at the end of a merged cloud, in that order (the sensor's layout)."""
    tactile_encoder: str = "merged"
    """How the taxel points are read: ``merged`` (paper) - one PointNet max-pools visual and taxel points together;
    ``separate`` - the taxels get a PointNet of their own (same widths) whose feature is concatenated, so they
    cannot take the visual points' max-pool channels. A cloud without taxels (visual policy) reads as merged."""

    def __post_init__(self) -> None:
        _check(self.tactile_encoder in ("merged", "separate"),
               f"point_encoder.tactile_encoder must be 'merged' or 'separate', got {self.tactile_encoder!r}")
        _check(len(self.hidden_dims) > 0 and all(h > 0 for h in self.hidden_dims),
               f"point_encoder.hidden_dims must be a non-empty list of positive widths, got {self.hidden_dims}")
        _check(self.out_dim > 0, f"point_encoder.out_dim must be positive, got {self.out_dim}")
        _check(self.visual_stride >= 1, f"point_encoder.visual_stride must be >= 1, got {self.visual_stride}")
        _check(self.tactile_pool >= 1 and all(n % self.tactile_pool == 0 for n in self.tactile_grid[1:]),
               f"point_encoder.tactile_pool must be >= 1 and divide the pad grid {self.tactile_grid[1:]}, got "
               f"{self.tactile_pool}")


@dataclass
class StateEncoderCfg(_CfgBase):
    """MLP on the joint positions of one observation step."""

    hidden_dims: tuple[int, ...] = (64, 64)
    """Layer widths; the last is the per-step feature size (paper: 64/64). Empty: no MLP, the normalised joints
    themselves join the condition (as diffusion_policy conditions on low-dim observations)."""

    def __post_init__(self) -> None:
        _check(all(h > 0 for h in self.hidden_dims),
               f"state_encoder.hidden_dims must be a list of positive widths (empty: none), got {self.hidden_dims}")


@dataclass
class UnetCfg(_CfgBase):
    """1-D conditional U-Net denoiser (FiLM conditioning on step embedding + observation features)."""

    down_dims: tuple[int, ...] = (512, 1024, 2048)
    """Channels per resolution level; the chunk is halved in time between levels (paper: 512/1024/2048)."""
    kernel_size: int = 5
    """Temporal convolution kernel, in chunk steps (paper: 5)."""
    n_groups: int = 8
    """GroupNorm groups (paper: 8); every entry of down_dims must be divisible by it."""
    diffusion_step_embed_dim: int = 128
    """Size of the sinusoidal denoising-step embedding (inferred; Diffusion Policy uses 128-256)."""

    def __post_init__(self) -> None:
        _check(len(self.down_dims) > 0, "unet.down_dims must list at least one channel width")
        for d in self.down_dims:
            _check(d > 0 and d % self.n_groups == 0,
                   f"unet.down_dims entry {d} must be a positive multiple of unet.n_groups={self.n_groups}")
        _check(self.kernel_size >= 1 and self.kernel_size % 2 == 1,
               f"unet.kernel_size must be an odd positive integer (keeps the chunk length), got {self.kernel_size}")
        _check(self.diffusion_step_embed_dim >= 4 and self.diffusion_step_embed_dim % 2 == 0,
               f"unet.diffusion_step_embed_dim must be an even integer >= 4, got {self.diffusion_step_embed_dim}")


@dataclass
class DiffusionCfg(_CfgBase):
    """Noise schedule, prediction target and samplers."""

    denoising_steps: int = 100
    """K, number of DDPM steps (paper: 100)."""
    beta_schedule: str = "cosine"
    """Only "cosine" (Nichol & Dhariwal 2021) is implemented."""
    cosine_s: float = 0.008
    """Offset s of the cosine schedule (dimensionless, Nichol & Dhariwal default)."""
    max_beta: float = 0.999
    """Upper clip of beta_t, avoids a singular last step."""
    prediction_type: str = "epsilon"
    """What the denoiser predicts: "epsilon" (paper) or "sample" (x0)."""
    ddim_steps: int = 5
    """Kd, number of DDIM steps for fast inference."""
    ddim_eta: float = 0.0
    """DDIM stochasticity (0 = deterministic DDIM, 1 = DDPM-like variance)."""
    ddim_discretize: str = "trailing"
    """DDIM timestep spacing: "trailing" (starts at t=K-1, Lin et al. 2024) or "leading" (DPPO's choice)."""
    clip_denoised: bool = True
    """Clip the predicted x0 at every step (in normalised action space)."""
    denoised_clip_value: float = 1.0
    """Bound of the x0 clip, normalised action units (actions live in [-1, 1])."""
    randn_clip_value: float = 10.0
    """Clip of the per-step standard-normal draws, in standard deviations (DPPO fine-tuning uses 3)."""
    final_action_clip_value: float | None = 1.0
    """Clamp of the final sample, normalised units; null disables it."""

    def __post_init__(self) -> None:
        _check(self.denoising_steps >= 2, f"diffusion.denoising_steps must be >= 2, got {self.denoising_steps}")
        _check(self.beta_schedule == "cosine",
               f"diffusion.beta_schedule '{self.beta_schedule}' is not supported; use 'cosine'")
        _check(self.prediction_type in ("epsilon", "sample"),
               f"diffusion.prediction_type must be 'epsilon' or 'sample', got '{self.prediction_type}'")
        _check(1 <= self.ddim_steps <= self.denoising_steps,
               f"diffusion.ddim_steps must be in [1, denoising_steps={self.denoising_steps}], got {self.ddim_steps}")
        _check(self.ddim_eta >= 0.0, f"diffusion.ddim_eta must be >= 0, got {self.ddim_eta}")
        _check(self.ddim_discretize in ("trailing", "leading"),
               f"diffusion.ddim_discretize must be 'trailing' or 'leading', got '{self.ddim_discretize}'")
        _check(0.0 < self.max_beta < 1.0, f"diffusion.max_beta must be in (0, 1), got {self.max_beta}")
        _check(self.denoised_clip_value > 0,
               f"diffusion.denoised_clip_value must be > 0, got {self.denoised_clip_value}")
        _check(self.randn_clip_value > 0, f"diffusion.randn_clip_value must be > 0, got {self.randn_clip_value}")


@dataclass
class DiffusionPolicyCfg(_CfgBase):
    """Observation/action layout of the policy and its sub-networks.

    Observations (env units): ``point_cloud`` Tensor of shape (B, To, Np, C) -- metres in the camera
    frame plus value and flag channels, not normalised -- and ``joint_pos`` Tensor of shape (B, To, Dq)
    in rad / m. Actions: Tensor of shape (B, Ta, Da), joint-position targets in the env's action space; the
    network predicts them absolute or, with ``relative_actions``, relative to the last observed joints.
    """

    obs_steps: int = 2
    """To, observation history length for points and joints (paper: 2)."""
    use_point_cloud: bool = True
    """False gives a proprioception-only policy (no point encoder, no point_cloud input)."""
    num_points: int = 2560
    """Np expected per cloud (inferred: 1024 visual + 1536 taxels); the encoder itself accepts any Np."""
    point_channels: int = 5
    """C: x, y, z, value, flag (visual-only data keeps C=5 with value = flag = 0)."""
    joint_dim: int = 16
    """Dq, joint positions of both arms incl. fingers."""
    horizon_steps: int = 16
    """Ta, predicted chunk length (paper: 16)."""
    act_steps: int = 8
    """Te, steps executed from each chunk before re-planning (paper: 8)."""
    action_dim: int = 16
    """Da, joint-position targets in the env's action space."""
    relative_actions: bool = False
    """Predict each chunk relative to the action that holds the last observed joint positions, so that holding
    still is the network's zero. Needs ``joint_to_action``; the output is normalised with the statistics of these
    differences, which on 30 peg demos span about as much as the absolute targets (16-step windows include the
    fast reaches), and it measured 5/50 against 8/50 absolute: off in both profiles."""
    joint_to_action: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    """(scale, offset) per action dim, Tensor-free: the env's action that holds joint positions q is
    scale * q + offset (ALOHA: its joint limits mapped onto [-1, 1]); set from the task at pre-training."""
    sampler: str = "ddpm"
    """Default sampler of ``predict_chunk``: "ddpm" (K steps, paper) or "ddim" (Kd steps)."""
    normalizer_eps: float = 1e-4
    """Smallest half-range of the action/joint min-max normalisers (rad or m); narrower dims count as constant."""
    point_encoder: PointEncoderCfg = field(default_factory=PointEncoderCfg)
    state_encoder: StateEncoderCfg = field(default_factory=StateEncoderCfg)
    unet: UnetCfg = field(default_factory=UnetCfg)
    diffusion: DiffusionCfg = field(default_factory=DiffusionCfg)

    def __post_init__(self) -> None:
        for name in ("obs_steps", "joint_dim", "horizon_steps", "act_steps", "action_dim", "point_channels"):
            _check(getattr(self, name) >= 1, f"policy.{name} must be >= 1, got {getattr(self, name)}")
        _check(not self.use_point_cloud or self.num_points >= 1,
               f"policy.num_points must be >= 1 when use_point_cloud is true, got {self.num_points}")
        _check(self.act_steps <= self.horizon_steps,
               f"policy.act_steps ({self.act_steps}) must not exceed policy.horizon_steps ({self.horizon_steps})")
        _check(self.sampler in ("ddpm", "ddim"), f"policy.sampler must be 'ddpm' or 'ddim', got '{self.sampler}'")
        _check(self.normalizer_eps > 0, f"policy.normalizer_eps must be > 0, got {self.normalizer_eps}")
        if self.relative_actions:
            _check(self.joint_dim == self.action_dim,
                   f"policy.relative_actions needs one action per joint; joint_dim {self.joint_dim} != action_dim "
                   f"{self.action_dim}")
        if self.joint_to_action is not None:
            _check(len(self.joint_to_action) == 2 and all(len(row) == self.action_dim for row in self.joint_to_action),
                   f"policy.joint_to_action must be (scale, offset) of {self.action_dim} numbers each")
        factor = 2 ** (len(self.unet.down_dims) - 1)
        _check(self.horizon_steps % factor == 0,
               f"policy.horizon_steps ({self.horizon_steps}) must be divisible by 2**(len(unet.down_dims)-1) = "
               f"{factor}: the U-Net halves the chunk at each of its {len(self.unet.down_dims)} levels; "
               "change horizon_steps or use fewer unet.down_dims")

    @property
    def obs_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-sample observation shapes (no batch dim): point_cloud (To, Np, C), joint_pos (To, Dq)."""
        shapes: dict[str, tuple[int, ...]] = {}
        if self.use_point_cloud:
            shapes["point_cloud"] = (self.obs_steps, self.num_points, self.point_channels)
        shapes["joint_pos"] = (self.obs_steps, self.joint_dim)
        return shapes

    @property
    def action_shape(self) -> tuple[int, int]:
        """Per-sample action chunk shape (Ta, Da)."""
        return (self.horizon_steps, self.action_dim)


@dataclass
class PretrainCfg(_CfgBase):
    """Behaviour-cloning pre-training (optimiser, schedule, EMA, logging)."""

    total_steps: int = 60000
    """Gradient steps in all (inferred: ~3000 DPPO epochs of 30 demos at batch 256)."""
    batch_size: int = 256
    """Chunks per gradient step (DPPO public default)."""
    lr: float = 1e-4
    """Peak AdamW learning rate (DPPO public default)."""
    min_lr: float = 1e-5
    """Learning rate at the end of the cosine decay (DPPO public default)."""
    warmup_steps: int = 500
    """Linear warm-up from ~0 to lr, in gradient steps."""
    weight_decay: float = 1e-6
    """AdamW decoupled weight decay (DPPO public default)."""
    adam_betas: tuple[float, ...] = (0.9, 0.999)
    """AdamW (beta1, beta2)."""
    ema_decay: float = 0.995
    """EMA decay per step (DPPO public default)."""
    ema_warmup: bool = True
    """Use decay min(ema_decay, (1 + n) / (10 + n)) so early EMA weights are not stuck at the init."""
    grad_clip_norm: float | None = 1.0
    """Max global gradient L2 norm; null disables clipping."""
    checkpoint_every: int = 5000
    """Write checkpoints/last.pt every this many steps (and final.pt at the end)."""
    log_every: int = 50
    """TensorBoard scalar interval, in steps."""
    num_workers: int = 0
    """DataLoader worker processes (0 = load in the training process)."""
    seed: int = 0
    """Seed of weights, batch order and diffusion noise (resumed runs replay the same stream)."""
    tactile_dropout: float = 0.0
    """Share of training samples whose taxel readings are all set to 0 (every frame; positions and flags kept), so
    the policy must also act from the points and joints alone when a contact pattern is one no demo showed. Drawn
    only when > 0 (the default run is unchanged); no effect on a cloud without taxels. Measured at 0.5 (peg, 30
    demos with 16 mm hold noise, 50 episodes): 8/50 against 10/50 without; fewer drops (10 vs 16), more missed
    grasps (15 vs 6), the visual policy's pattern (README, bc10)."""

    def __post_init__(self) -> None:
        _check(0.0 <= self.tactile_dropout <= 1.0,
               f"pretrain.tactile_dropout must be in [0, 1], got {self.tactile_dropout}")
        _check(self.total_steps >= 1, f"pretrain.total_steps must be >= 1, got {self.total_steps}")
        _check(self.batch_size >= 1, f"pretrain.batch_size must be >= 1, got {self.batch_size}")
        _check(self.lr > 0 and 0 <= self.min_lr <= self.lr,
               f"pretrain.lr must be > 0 and 0 <= pretrain.min_lr <= lr, got lr={self.lr}, min_lr={self.min_lr}")
        _check(self.warmup_steps >= 0, f"pretrain.warmup_steps must be >= 0, got {self.warmup_steps}")
        _check(len(self.adam_betas) == 2, f"pretrain.adam_betas must have two entries, got {self.adam_betas}")
        _check(0.0 <= self.ema_decay < 1.0, f"pretrain.ema_decay must be in [0, 1), got {self.ema_decay}")
        _check(self.checkpoint_every >= 1, f"pretrain.checkpoint_every must be >= 1, got {self.checkpoint_every}")
        _check(self.log_every >= 1, f"pretrain.log_every must be >= 1, got {self.log_every}")
        _check(self.num_workers >= 0, f"pretrain.num_workers must be >= 0, got {self.num_workers}")


@dataclass
class DiffusionProfile(_CfgBase):
    """The ``policy:`` and ``pretrain:`` sections of a run profile (read by ``vt_refine.app.profile``)."""

    policy: DiffusionPolicyCfg = field(default_factory=DiffusionPolicyCfg)
    pretrain: PretrainCfg = field(default_factory=PretrainCfg)
