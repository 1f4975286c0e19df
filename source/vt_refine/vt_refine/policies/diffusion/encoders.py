"""Observation encoders: PointNet on the merged visuo-tactile cloud, MLP on the joints.

Symbols used in shapes:
    B   batch
    To  observation history (2)
    Np  points per cloud (any number; padded points are removed with a mask)
    C   point channels (5: x, y, z, value, flag; visual points carry value = flag = 0)
    Dq  joint dim (16)
    F   point feature size (64; visual and taxel features side by side, 2F, with a separate tactile encoder)
    G   joint feature size (64)
"""

from __future__ import annotations

import torch
from torch import nn

from ...utils.point_layout import FLAG_CHANNEL
from .config import DiffusionPolicyCfg, PointEncoderCfg, StateEncoderCfg

__all__ = ["PointNetEncoder", "JointEncoder", "ObservationEncoder", "reduce_points", "split_points"]


def split_points(points: torch.Tensor, mask: torch.Tensor | None, cfg: PointEncoderCfg):
    """The points the encoder reads, visual and taxel apart: every ``visual_stride``-th visual point, and the taxel
    grid pooled over ``tactile_pool`` x ``tactile_pool`` blocks (mean position, largest value, flag 1), see
    :class:`PointEncoderCfg`.

    Args:
        points: Tensor of shape (B, Np, C): visual points first (flag 0), then, in a visuo-tactile cloud, the
            pads' taxels (flag 1) in ``tactile_grid`` order.
        mask: Optional bool Tensor of shape (B, Np).

    Returns:
        (visual, visual_mask, tactile, tactile_mask) of shapes (B, Nv, C), (B, Nv), (B, Nt, C), (B, Nt); a mask is
        None if ``mask`` is None, and both tactile entries are None for a cloud without taxels.
    """
    stride, pool = cfg.visual_stride, cfg.tactile_pool
    pads, rows, cols = cfg.tactile_grid
    taxels = pads * rows * cols
    num = points.shape[1]
    has_taxels = num > taxels and bool(points[0, num - taxels:, FLAG_CHANNEL].ge(0.5).all())  # taxels last
    split = num - taxels if has_taxels else num
    visual = points[:, :split:stride]
    vmask = None if mask is None else mask[:, :split:stride]
    if not has_taxels:
        return visual, vmask, None, None
    tactile, tmask = points[:, split:], (None if mask is None else mask[:, split:])
    if pool == 1:
        return visual, vmask, tactile, tmask
    b, c = points.shape[0], points.shape[2]
    grid = tactile.reshape(b, pads, rows // pool, pool, cols // pool, pool, c)
    xyz = grid[..., :3].mean(dim=(3, 5))
    value = grid[..., 3:4].amax(dim=(3, 5))
    flag = torch.ones_like(value)
    pooled = torch.cat([xyz, value, flag, grid[..., 0, :, 0, 5:]], dim=-1).reshape(b, -1, c)
    if tmask is not None:
        tmask = tmask.reshape(b, pads, rows // pool, pool, cols // pool, pool).any(dim=5).any(dim=3).reshape(b, -1)
    return visual, vmask, pooled, tmask


def reduce_points(points: torch.Tensor, mask: torch.Tensor | None, cfg: PointEncoderCfg):
    """The points the encoder reads (:func:`split_points`) as one cloud, visual points first.

    Returns:
        (points, mask) of shapes (B, Np', C) and (B, Np') (mask None if given None).
    """
    if cfg.visual_stride == 1 and cfg.tactile_pool == 1:
        return points, mask
    visual, vmask, tactile, tmask = split_points(points, mask, cfg)
    if tactile is None:
        return visual, vmask
    return torch.cat([visual, tactile], dim=1), (None if mask is None else torch.cat([vmask, tmask], dim=1))


class PointNetEncoder(nn.Module):
    """Shared per-point MLP (Linear, LayerNorm, ReLU) -> max-pool over points -> Linear (+ LayerNorm)."""

    def __init__(self, in_channels: int, cfg: PointEncoderCfg):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_channels
        for hidden in cfg.hidden_dims:
            layers.append(nn.Linear(width, hidden))
            if cfg.use_layer_norm:
                layers.append(nn.LayerNorm(hidden))
            layers.append(nn.ReLU())
            width = hidden
        self.point_mlp = nn.Sequential(*layers)
        projection: list[nn.Module] = [nn.Linear(width, cfg.out_dim)]
        if cfg.use_layer_norm:
            projection.append(nn.LayerNorm(cfg.out_dim))
        self.projection = nn.Sequential(*projection)
        self.in_channels = in_channels
        self.out_dim = cfg.out_dim

    def forward(self, points: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            points: Tensor of shape (B, Np, C).
            mask: Optional bool Tensor of shape (B, Np); False marks padding, ignored by the max-pool.

        Returns:
            Tensor of shape (B, F). A cloud with no valid point pools to zeros.
        """
        if points.shape[-1] != self.in_channels or points.ndim != 3 or points.shape[1] == 0:
            raise ValueError(f"point cloud must have shape (B, Np>0, {self.in_channels}), got {tuple(points.shape)}")
        per_point = self.point_mlp(points)  # (B, Np, H)
        if mask is None:
            # max with indices: its backward scatters into the winners, where amax's compares every element
            pooled = per_point.max(dim=1).values
        else:
            if mask.shape != points.shape[:2]:
                raise ValueError(f"point_mask must have shape {tuple(points.shape[:2])}, got {tuple(mask.shape)}")
            mask = mask.to(torch.bool)
            # -inf never wins the max, so padded points cannot leak in; empty clouds are zeroed below.
            pooled = per_point.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(dim=1).values
            pooled = torch.where(mask.any(dim=1, keepdim=True), pooled, torch.zeros_like(pooled))
        return self.projection(pooled)


class JointEncoder(nn.Module):
    """MLP on the joint positions of one step: Linear -> Mish -> ... -> Linear (no output activation); with no
    hidden widths the identity (the normalised joints are the feature)."""

    def __init__(self, joint_dim: int, cfg: StateEncoderCfg):
        super().__init__()
        layers: list[nn.Module] = []
        width = joint_dim
        for i, hidden in enumerate(cfg.hidden_dims):
            layers.append(nn.Linear(width, hidden))
            if i < len(cfg.hidden_dims) - 1:
                layers.append(nn.Mish())
            width = hidden
        self.mlp = nn.Sequential(*layers)
        self.out_dim = width

    def forward(self, joint_pos: torch.Tensor) -> torch.Tensor:
        """joint_pos: Tensor of shape (..., Dq), normalised -> Tensor of shape (..., G)."""
        return self.mlp(joint_pos)


class ObservationEncoder(nn.Module):
    """Encodes each of the To history steps and concatenates them into the condition vector.

    Input (normalised joints, raw points): ``point_cloud`` Tensor of shape (B, To, Np, C) (omitted when
    ``use_point_cloud`` is false), optional ``point_mask`` bool Tensor of shape (B, To, Np), and
    ``joint_pos`` Tensor of shape (B, To, Dq). Output: Tensor of shape (B, To * (F + G)), (B, To * (2F + G)) with a
    separate tactile encoder.
    """

    def __init__(self, cfg: DiffusionPolicyCfg):
        super().__init__()
        self.cfg = cfg
        self.point_encoder = PointNetEncoder(cfg.point_channels, cfg.point_encoder) if cfg.use_point_cloud else None
        separate = cfg.use_point_cloud and cfg.point_encoder.tactile_encoder == "separate"
        self.tactile_encoder = PointNetEncoder(cfg.point_channels, cfg.point_encoder) if separate else None
        self.joint_encoder = JointEncoder(cfg.joint_dim, cfg.state_encoder)
        point_dim = cfg.point_encoder.out_dim * (2 if separate else 1) if cfg.use_point_cloud else 0
        self.cond_dim = cfg.obs_steps * (point_dim + self.joint_encoder.out_dim)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        cfg = self.cfg
        joint_pos = _require(obs, "joint_pos", (cfg.obs_steps, cfg.joint_dim))
        batch = joint_pos.shape[0]
        features = [self.joint_encoder(joint_pos).reshape(batch, -1)]  # (B, To*G)
        if self.point_encoder is not None:
            points = _require(obs, "point_cloud", (cfg.obs_steps, None, cfg.point_channels))
            if points.shape[0] != batch:
                raise ValueError(f"point_cloud batch {points.shape[0]} differs from joint_pos batch {batch}")
            num_points = points.shape[2]
            mask = obs.get("point_mask")
            if mask is not None:
                if mask.shape != points.shape[:3]:
                    raise ValueError(f"point_mask must have shape (B, To, Np) = {tuple(points.shape[:3])}, "
                                     f"got {tuple(mask.shape)}")
                mask = mask.reshape(batch * cfg.obs_steps, num_points)
            flat = points.reshape(batch * cfg.obs_steps, num_points, -1)
            if self.tactile_encoder is None:
                flat, mask = reduce_points(flat, mask, cfg.point_encoder)
                pooled = self.point_encoder(flat, mask)  # (B*To, F)
            else:
                visual, vmask, tactile, tmask = split_points(flat, mask, cfg.point_encoder)
                if tactile is None:
                    raise ValueError("point_encoder.tactile_encoder 'separate' needs the taxel points at the end of "
                                     "the cloud (a visuo-tactile cloud); this one has none")
                pooled = torch.cat([self.point_encoder(visual, vmask), self.tactile_encoder(tactile, tmask)], dim=-1)
            features.insert(0, pooled.reshape(batch, -1))  # (B, To*F) or (B, To*2F) with a separate tactile encoder
        return torch.cat(features, dim=-1)


def _require(obs: dict[str, torch.Tensor], key: str, shape: tuple[int | None, ...]) -> torch.Tensor:
    """Fetch obs[key] and check its per-sample shape (None = any size)."""
    if key not in obs:
        raise ValueError(f"observation '{key}' is missing; got keys {sorted(obs)}. "
                         f"Provide '{key}' of shape (B, {', '.join('*' if s is None else str(s) for s in shape)})")
    value = obs[key]
    sample_shape = tuple(value.shape[1:])
    if len(sample_shape) != len(shape) or any(s is not None and s != v for s, v in zip(shape, sample_shape)):
        want = ", ".join("*" if s is None else str(s) for s in shape)
        raise ValueError(f"observation '{key}' must have shape (B, {want}), got {tuple(value.shape)}")
    return value
