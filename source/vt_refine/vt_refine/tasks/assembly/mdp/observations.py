"""Observation terms of the assembly tasks (state part; point clouds and touch live beside them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from isaaclab.managers import SceneEntityCfg
from isaaclab.utils.math import matrix_from_quat

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedRLEnv

__all__ = ["part_pose_env", "tactile_image", "tactile_points"]


def part_pose_env(env: ManagerBasedRLEnv, asset_cfg: SceneEntityCfg = SceneEntityCfg("plug")) -> torch.Tensor:
    """Pose of a part in its env frame: position [m] then the first two columns of its rotation matrix.

    The 6-D rotation is continuous (Zhou et al., CVPR 2019), unlike a quaternion made unique by w >= 0: the plug
    rests near yaw 180 deg, where w changes sign inside the reset's +-15 deg and the canonical quaternion jumps
    from (0, 0, 1, ~0) to (0, 0, -1, ~0) between two nearly equal poses (half the recorded peg demos on each side).

    Returns:
        Tensor of shape (num_envs, 9).
    """
    data = env.scene[asset_cfg.name].data
    pos = data.root_pos_w.torch - env.scene.env_origins
    rot = matrix_from_quat(data.root_quat_w.torch)  # (E, 3, 3)
    return torch.cat([pos, rot[:, :, 0], rot[:, :, 1]], dim=-1)


def tactile_image(
    env: ManagerBasedRLEnv, sensor_cfg: SceneEntityCfg = SceneEntityCfg("tactile"), normalized: bool = True
) -> torch.Tensor:
    """The four pads' readings as images: the paper's normalised reading, or the raw force [N].

    Returns:
        Tensor of shape (num_envs, 4, 12, 32).
    """
    data = env.scene.sensors[sensor_cfg.name].data
    return data.normalized if normalized else data.force


def tactile_points(env: ManagerBasedRLEnv, sensor_cfg: SceneEntityCfg = SceneEntityCfg("tactile")) -> torch.Tensor:
    """Tactile points (x, y, z, normalised reading) in the sensor's output (camera) frame.

    Returns:
        Tensor of shape (num_envs, 1536, 4).
    """
    return env.scene.sensors[sensor_cfg.name].data.tactile_points
