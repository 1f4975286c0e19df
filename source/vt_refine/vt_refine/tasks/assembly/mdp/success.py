"""The assembly success check (Factory/AutoMate rule), shared by rewards, terminations and metrics.

The plug's pose is expressed in the socket's frame; the assembled pose is a pure translation
(0, 0, assembled_plug_z) along the socket's +z (the parts' frame convention, see ``assets/parts.py``).
This makes the check frame-invariant: it holds for parts lying on the table and for parts held in
the air by the two grippers alike.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from isaaclab.managers import SceneEntityCfg
from isaaclab.utils.math import quat_apply, quat_apply_inverse

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedRLEnv

__all__ = ["plug_pose_in_socket", "assembly_error", "assembly_success"]


def plug_pose_in_socket(
    env: ManagerBasedRLEnv,
    plug_cfg: SceneEntityCfg = SceneEntityCfg("plug"),
    socket_cfg: SceneEntityCfg = SceneEntityCfg("socket"),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plug origin position and z axis in the socket frame.

    Returns:
        Tensors of shape (num_envs, 3): position [m] and the plug's unit z axis.
    """
    plug = env.scene[plug_cfg.name].data
    socket = env.scene[socket_cfg.name].data
    plug_pos, plug_quat = plug.root_pos_w.torch, plug.root_quat_w.torch
    socket_pos, socket_quat = socket.root_pos_w.torch, socket.root_quat_w.torch
    rel_pos = quat_apply_inverse(socket_quat, plug_pos - socket_pos)
    z = torch.zeros_like(plug_pos)
    z[:, 2] = 1.0
    rel_z = quat_apply_inverse(socket_quat, quat_apply(plug_quat, z))
    return rel_pos, rel_z


def assembly_error(env: ManagerBasedRLEnv, assembled_plug_z: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lateral error [m], remaining insertion height [m] and tilt [rad] of the plug.

    Returns:
        Three tensors of shape (num_envs,).
    """
    rel_pos, rel_z = plug_pose_in_socket(env)
    xy_error = torch.linalg.norm(rel_pos[:, :2], dim=-1)
    height_left = rel_pos[:, 2] - assembled_plug_z
    tilt = torch.acos(rel_z[:, 2].clamp(-1.0, 1.0))
    return xy_error, height_left, tilt


def assembly_success(
    env: ManagerBasedRLEnv,
    assembled_plug_z: float,
    socket_height: float,
    xy_threshold: float = 0.0025,
    height_fraction: float = 0.04,
    max_tilt_deg: float = 10.0,
) -> torch.Tensor:
    """Whether each env's plug is assembled: lateral error below ``xy_threshold`` [m], the plug within
    ``height_fraction`` of the socket height of its assembled depth, and its axis within ``max_tilt_deg``.

    Returns:
        Bool tensor of shape (num_envs,).
    """
    xy_error, height_left, tilt = assembly_error(env, assembled_plug_z)
    return (
        (xy_error < xy_threshold)
        & (height_left < height_fraction * socket_height)
        & (tilt < math.radians(max_tilt_deg))
    )
