"""Test fixtures of the diffusion policy: a tiny policy cfg and a synthetic chunk dataset (random clouds, joints and
chunks of the shapes a policy cfg expects)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from vt_refine.policies.diffusion import DiffusionPolicyCfg, PointEncoderCfg, StateEncoderCfg, UnetCfg


class SyntheticChunkDataset(Dataset):
    """Random but learnable chunks with the layout of the demo datasets.

    kinds:
        "linear": joints move at a constant random velocity v; joint_pos history is (q - v, q) and the
            chunk continues the motion, actions[k] = q + (k + 1) v. Learnable from the 2-step history.
        "gaussian": actions ~ N(mean, std^2) i.i.d., independent of the observation.
        "bimodal": every chunk is constant at +mean or -mean (p = 1/2) plus N(0, std^2) noise.
    Point clouds: Np points with xyz uniform in +-0.3 m; the last ``num_tactile`` points are taxels
    (flag 1, value uniform in [0, 1]), the others visual (value = flag = 0).
    """

    def __init__(
        self,
        num_samples: int,
        *,
        obs_steps: int = 2,
        num_points: int = 64,
        point_channels: int = 5,
        joint_dim: int = 16,
        horizon_steps: int = 16,
        action_dim: int = 16,
        kind: str = "linear",
        mean: float = 0.3,
        std: float = 0.1,
        num_tactile: int | None = None,
        seed: int = 0,
    ):
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if kind not in ("linear", "gaussian", "bimodal"):
            raise ValueError(f"kind must be 'linear', 'gaussian' or 'bimodal', got '{kind}'")
        if kind == "linear" and action_dim != joint_dim:
            raise ValueError(f"kind 'linear' needs action_dim == joint_dim, got {action_dim} and {joint_dim}")
        gen = torch.Generator().manual_seed(seed)
        n = num_samples
        q = torch.rand(n, joint_dim, generator=gen) * 2.0 - 1.0  # rad
        v = (torch.rand(n, joint_dim, generator=gen) * 2.0 - 1.0) * 0.02  # rad per step
        steps = torch.arange(obs_steps - 1, -1, -1, dtype=torch.float32)  # (To,): obs_steps-1 ... 0 steps ago
        self.joint_pos = q.unsqueeze(1) - steps.view(1, -1, 1) * v.unsqueeze(1)  # (N, To, Dq)
        if kind == "linear":
            k = torch.arange(1, horizon_steps + 1, dtype=torch.float32)
            self.actions = q.unsqueeze(1) + k.view(1, -1, 1) * v.unsqueeze(1)  # (N, Ta, Da)
        elif kind == "gaussian":
            self.actions = mean + std * torch.randn(n, horizon_steps, action_dim, generator=gen)
        else:
            sign = torch.where(torch.rand(n, 1, 1, generator=gen) < 0.5, -1.0, 1.0)
            self.actions = sign * mean + std * torch.randn(n, horizon_steps, action_dim, generator=gen)
        self.point_cloud = None
        if num_points > 0:
            num_tactile = num_points // 4 if num_tactile is None else num_tactile
            cloud = torch.zeros(n, obs_steps, num_points, point_channels)
            cloud[..., :3] = (torch.rand(n, obs_steps, num_points, 3, generator=gen) * 2.0 - 1.0) * 0.3
            if num_tactile > 0 and point_channels >= 5:
                cloud[:, :, -num_tactile:, 3] = torch.rand(n, obs_steps, num_tactile, generator=gen)
                cloud[:, :, -num_tactile:, 4] = 1.0
            self.point_cloud = cloud  # (N, To, Np, C)

    @classmethod
    def from_cfg(cls, cfg: DiffusionPolicyCfg, num_samples: int, num_points: int | None = None,
                 **kwargs: Any) -> SyntheticChunkDataset:
        """Dataset with the shapes of ``cfg`` (``num_points`` overrides Np, e.g. to keep tests small)."""
        points = 0 if not cfg.use_point_cloud else (cfg.num_points if num_points is None else num_points)
        return cls(num_samples, obs_steps=cfg.obs_steps, num_points=points, point_channels=cfg.point_channels,
                   joint_dim=cfg.joint_dim, horizon_steps=cfg.horizon_steps, action_dim=cfg.action_dim, **kwargs)

    def __len__(self) -> int:
        return self.actions.shape[0]

    def __getitem__(self, index: int) -> dict[str, Any]:
        obs = {"joint_pos": self.joint_pos[index]}
        if self.point_cloud is not None:
            obs["point_cloud"] = self.point_cloud[index]
        return {"obs": obs, "actions": self.actions[index]}

    def stats(self) -> dict[str, dict[str, np.ndarray]]:
        """Per-dim min/max of actions (Da,) and joint positions (Dq,)."""
        a = self.actions.reshape(-1, self.actions.shape[-1])
        q = self.joint_pos.reshape(-1, self.joint_pos.shape[-1])
        return {"actions": {"min": a.amin(0).numpy(), "max": a.amax(0).numpy()},
                "joint_pos": {"min": q.amin(0).numpy(), "max": q.amax(0).numpy()}}


def tiny_policy_cfg(width: int = 16, **overrides) -> DiffusionPolicyCfg:
    """A policy small enough for unit tests: one hidden layer of ``width`` per encoder, U-Net (width, 2 width),
    Ta = 8, Te = 4; ``overrides`` are fields of DiffusionPolicyCfg."""
    small = max(8, width // 2)
    return DiffusionPolicyCfg(**{"num_points": 24, "horizon_steps": 8, "act_steps": 4,
                                 "point_encoder": PointEncoderCfg(hidden_dims=(width,), out_dim=small),
                                 "state_encoder": StateEncoderCfg(hidden_dims=(width,)),
                                 "unet": UnetCfg(down_dims=(width, 2 * width), diffusion_step_embed_dim=small),
                                 **overrides})
