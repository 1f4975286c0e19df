"""Per-dimension min-max normalisation to [-1, 1] (actions and joint positions).

Points are not normalised: they are metres in the camera frame and the value/flag channels already
live in [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["MinMaxNormalizer"]


class MinMaxNormalizer(nn.Module):
    """Maps each of D dimensions affinely from [min, max] to [-1, 1].

    A dimension whose range is below ``eps`` (e.g. an unused finger joint in the demos) is centred
    instead of stretched: its constant value maps to 0 and back exactly, so no NaN or huge value appears.
    The statistics are buffers, so they travel with ``state_dict`` and ``.to(device)``.
    """

    def __init__(self, dim: int, eps: float = 1e-4):
        """
        Args:
            dim: D, size of the last axis of the normalised tensors.
            eps: Smallest half-range, in the data's unit (rad, m); smaller ranges are treated as constant.
        """
        super().__init__()
        if dim < 1:
            raise ValueError(f"MinMaxNormalizer dim must be >= 1, got {dim}")
        self.dim = dim
        self.eps = float(eps)
        self.register_buffer("data_min", -torch.ones(dim))  # Tensor of shape (D,)
        self.register_buffer("data_max", torch.ones(dim))  # Tensor of shape (D,)

    @classmethod
    def from_stats(cls, data_min: Any, data_max: Any, eps: float = 1e-4, name: str = "data") -> MinMaxNormalizer:
        """Build from per-dimension min and max (array-likes of shape (D,)); ``name`` appears in errors."""
        lo = torch.as_tensor(np.asarray(data_min, dtype=np.float32)).reshape(-1)
        hi = torch.as_tensor(np.asarray(data_max, dtype=np.float32)).reshape(-1)
        norm = cls(lo.numel(), eps=eps)
        norm.set_stats(lo, hi, name=name)
        return norm

    @classmethod
    def fit(cls, data: torch.Tensor, eps: float = 1e-4, name: str = "data") -> MinMaxNormalizer:
        """Build from samples, Tensor of shape (..., D): min/max over all leading axes."""
        flat = data.reshape(-1, data.shape[-1]).float()
        return cls.from_stats(flat.amin(0), flat.amax(0), eps=eps, name=name)

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor], eps: float = 1e-4) -> MinMaxNormalizer:
        """Rebuild from a ``state_dict()`` (dimension taken from the stored statistics)."""
        if "data_min" not in state or "data_max" not in state:
            raise ValueError(f"normalizer state must hold 'data_min' and 'data_max', got keys {sorted(state)}")
        norm = cls(int(state["data_min"].numel()), eps=eps)
        norm.load_state_dict(dict(state))
        return norm

    def set_stats(self, data_min: torch.Tensor, data_max: torch.Tensor, name: str = "data") -> None:
        """Replace the statistics; raises ValueError naming ``name`` for wrong sizes, NaN or min > max."""
        lo = torch.as_tensor(data_min, dtype=torch.float32).reshape(-1)
        hi = torch.as_tensor(data_max, dtype=torch.float32).reshape(-1)
        if lo.numel() != self.dim or hi.numel() != self.dim:
            raise ValueError(f"{name} min/max must have {self.dim} entries, got {lo.numel()} and {hi.numel()}")
        if not (torch.isfinite(lo).all() and torch.isfinite(hi).all()):
            raise ValueError(f"{name} min/max contain NaN or inf; recompute the dataset statistics")
        if bool((lo > hi).any()):
            bad = torch.nonzero(lo > hi).flatten().tolist()
            raise ValueError(f"{name} min exceeds max in dimension(s) {bad}; recompute the dataset statistics")
        self.data_min.copy_(lo)
        self.data_max.copy_(hi)

    def _center_scale(self) -> tuple[torch.Tensor, torch.Tensor]:
        center = 0.5 * (self.data_max + self.data_min)
        half_range = (0.5 * (self.data_max - self.data_min)).clamp(min=self.eps)
        return center, half_range

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Env units -> [-1, 1]; x is a Tensor of shape (..., D)."""
        self._check(x)
        center, half_range = self._center_scale()
        return (x - center) / half_range

    def unnormalize(self, y: torch.Tensor) -> torch.Tensor:
        """[-1, 1] -> env units; y is a Tensor of shape (..., D)."""
        self._check(y)
        center, half_range = self._center_scale()
        return y * half_range + center

    def _check(self, x: torch.Tensor) -> None:
        if x.shape[-1] != self.dim:
            raise ValueError(f"normalizer expects a last dimension of {self.dim}, got shape {tuple(x.shape)}")

    def extra_repr(self) -> str:
        return f"dim={self.dim}, eps={self.eps}"
