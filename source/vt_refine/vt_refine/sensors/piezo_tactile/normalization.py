"""Reading normalisation shared by the simulated and the real FlexiTac pads.

Legend: E envs, P pads, R x C taxel grid, F frames (time) of a real recording.

VT-Refine's rule: with m the largest reading of a pad (or of the whole frame),
    s -> s / s_max_fixed   if m < tau   (a quiet frame keeps its small absolute level)
    s -> s / m             otherwise    (a frame in contact is scaled to a peak of 1).
"""

from __future__ import annotations

import numpy as np
import torch

from isaaclab.utils import configclass

__all__ = ["TactileNormalizationCfg", "TactileNormalizationError", "normalize_tactile", "real_sensor_normalize"]


class TactileNormalizationError(ValueError):
    """Invalid normalisation setting or input (the message names the offending field)."""


@configclass
class TactileNormalizationCfg:
    """Settings of the max-or-fixed normalisation rule."""

    tau: float = 1.0e-3
    """Noise threshold on the maximum reading [N]. (inferred) Equal to ``s_max_fixed`` so the rule is
    continuous: at m = tau both branches give the same values."""

    s_max_fixed: float = 1.0e-3
    """Fixed scale used for quiet frames [N]. (inferred) The force of 1 mm penetration at the paper's
    k_n = 1.0; scale it together with k_n after calibration."""

    per_pad: bool = True
    """True: each pad is normalised by its own maximum; False: by the maximum of all pads of the env."""

    def validate_config(self) -> None:
        """Raise a clear error naming the first invalid field (run by ``validate()`` of Isaac Lab cfgs)."""
        if not np.isfinite(self.tau) or self.tau < 0.0:
            raise TactileNormalizationError(
                f"TactileNormalizationCfg.tau must be a finite value >= 0 [N]; got {self.tau!r}."
            )
        if not np.isfinite(self.s_max_fixed) or self.s_max_fixed <= 0.0:
            raise TactileNormalizationError(
                f"TactileNormalizationCfg.s_max_fixed must be a positive scale [N]; got {self.s_max_fixed!r}."
            )


def _max_or_fixed(readings: torch.Tensor, reduce_dims: tuple[int, ...], tau: float, fixed_scale: float) -> torch.Tensor:
    peak = readings.amax(dim=reduce_dims, keepdim=True)
    scale = torch.where(peak < tau, torch.full_like(peak, fixed_scale), peak)
    return readings / scale


def normalize_tactile(force: torch.Tensor, cfg: TactileNormalizationCfg) -> torch.Tensor:
    """Apply the max-or-fixed rule to a batch of pad readings.

    Args:
        force: Tensor of shape (E, P, ...) of non-negative readings [N] (trailing dims: taxels, e.g. (R, C)).
        cfg: Threshold, fixed scale and per-pad switch.

    Returns:
        Tensor of the same shape as ``force``, dimensionless.
    """
    if force.dim() < 3:
        raise TactileNormalizationError(f"force must have shape (E, P, taxels...); got {tuple(force.shape)}.")
    reduce_dims = tuple(range(2, force.dim())) if cfg.per_pad else tuple(range(1, force.dim()))
    return _max_or_fixed(force, reduce_dims, cfg.tau, cfg.s_max_fixed)


def real_sensor_normalize(
    raw_frames: torch.Tensor | np.ndarray,
    baseline_frames: int = 30,
    offset: float = 12.0,
    clip: float = 100.0,
    fixed_scale: float = 60.0,
    tau: float = 60.0,
) -> torch.Tensor:
    """Normalise a real FlexiTac recording the way the real-robot reader does.

    baseline = per-taxel median of the first ``baseline_frames`` frames;
    c = clip(raw - baseline - offset, 0, clip); then per frame c / fixed_scale when max(c) < tau,
    else c / max(c).

    Args:
        raw_frames: Tensor or array of shape (F, ...) of raw ADC counts, time first (e.g. (F, R, C) for one
            pad or (F, P, R, C) for all pads, normalised per frame over all taxels).
        baseline_frames: Number of leading frames whose median is the no-contact baseline.
        offset: Counts subtracted above the baseline to drop residual noise.
        clip: Largest kept count above baseline + offset.
        fixed_scale: Divisor of quiet frames [counts].
        tau: Threshold on the frame maximum [counts]; (inferred) default equals ``fixed_scale`` so the rule
            is continuous.

    Returns:
        Float32 tensor of shape (F, ...), the normalised readings.
    """
    frames = torch.as_tensor(raw_frames, dtype=torch.float32)
    if frames.dim() < 2:
        raise TactileNormalizationError(f"raw_frames must have shape (F, taxels...); got {tuple(frames.shape)}.")
    if int(baseline_frames) != baseline_frames or not 1 <= baseline_frames <= frames.shape[0]:
        raise TactileNormalizationError(
            f"baseline_frames must be an integer in [1, {frames.shape[0]}] (the number of frames); "
            f"got {baseline_frames!r}."
        )
    if not clip > 0.0 or not fixed_scale > 0.0:
        raise TactileNormalizationError(
            f"clip and fixed_scale must be positive; got clip={clip!r}, fixed_scale={fixed_scale!r}."
        )
    # torch.median returns the lower middle value for even counts; use quantile for the true median
    baseline = torch.quantile(frames[: int(baseline_frames)], 0.5, dim=0, keepdim=True)
    counts = torch.clamp(frames - baseline - offset, min=0.0, max=clip)
    return _max_or_fixed(counts, tuple(range(1, counts.dim())), tau, fixed_scale)
