"""Rotation-matrix helpers (batched torch): axis-angle conversions and interpolation."""

from __future__ import annotations

import torch


def axis_angle_from_matrix(r: torch.Tensor) -> torch.Tensor:
    """Axis-angle vectors of rotation matrices (B, 3, 3). Tensor of shape (B, 3)."""
    cos = ((r[..., 0, 0] + r[..., 1, 1] + r[..., 2, 2] - 1.0) * 0.5).clamp(-1.0, 1.0)
    angle = torch.acos(cos)
    v = torch.stack([r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]], -1)
    sin = torch.sin(angle)
    scale = torch.where(sin.abs() > 1e-6, angle / (2 * sin), torch.full_like(angle, 0.5))
    return v * scale[..., None]


def matrix_from_axis_angle(v: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula. ``v`` of shape (B, 3) -> (B, 3, 3)."""
    angle = v.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    k = v / angle
    kx = torch.zeros(*v.shape[:-1], 3, 3, dtype=v.dtype, device=v.device)
    kx[..., 0, 1], kx[..., 0, 2] = -k[..., 2], k[..., 1]
    kx[..., 1, 0], kx[..., 1, 2] = k[..., 2], -k[..., 0]
    kx[..., 2, 0], kx[..., 2, 1] = -k[..., 1], k[..., 0]
    a = angle[..., None]
    eye = torch.eye(3, dtype=v.dtype, device=v.device).expand_as(kx)
    return eye + torch.sin(a) * kx + (1 - torch.cos(a)) * (kx @ kx)


def slerp_matrix(a: torch.Tensor, b: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Geodesic interpolation from rotation ``a`` to ``b`` (B, 3, 3) at fractions ``s`` (B,)."""
    delta = axis_angle_from_matrix(a.transpose(-1, -2) @ b)
    return a @ matrix_from_axis_angle(delta * s[..., None])
