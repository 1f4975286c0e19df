"""Observation terms of the assembly tasks (state part; point clouds and touch live beside them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from isaaclab.managers import SceneEntityCfg

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedRLEnv

__all__ = ["part_pose_env"]


def part_pose_env(env: ManagerBasedRLEnv, asset_cfg: SceneEntityCfg = SceneEntityCfg("plug")) -> torch.Tensor:
    """Pose of a part in its env frame: position [m] then quaternion (x, y, z, w), w made >= 0 so the
    critic does not see the same orientation twice.

    Returns:
        Tensor of shape (num_envs, 7).
    """
    data = env.scene[asset_cfg.name].data
    pos = data.root_pos_w.torch - env.scene.env_origins
    quat = data.root_quat_w.torch
    quat = torch.where(quat[:, 3:4] < 0, -quat, quat)
    return torch.cat([pos, quat], dim=-1)
