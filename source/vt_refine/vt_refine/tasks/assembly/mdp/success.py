"""The assembly success rule, shared by rewards, terminations, collection and evaluation.

The plug's pose is expressed in the socket's frame; the assembled pose is a pure translation
(0, 0, assembled_plug_z) along the socket's +z (the parts' frame convention, see ``assets/parts.py``).
This makes the check frame-invariant: it holds for parts resting on the table and for parts held in
the air alike. A plug is assembled when, relative to its assembled pose,

* its axis lies within ``xy_threshold`` of the socket's axis (at least the fit's radial play: a tighter
  bound would fail a fully inserted plug resting against the bore's side),
* it is no more than ``depth_tolerance`` above and ``overshoot_tolerance`` below the assembled height,
* its axis is tilted less than ``max_tilt_deg`` from the socket's,
* and, where ``max_speed`` is set (a fit without a seat, which a falling plug passes through), it moves
  slower than that relative to the socket.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from isaaclab.managers import SceneEntityCfg
from isaaclab.utils import configclass
from isaaclab.utils.math import quat_apply, quat_apply_inverse

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedRLEnv

__all__ = ["AssemblySuccessCfg", "plug_pose_in_socket", "assembly_error", "assembly_success"]


@configclass
class AssemblySuccessCfg:
    """Thresholds of the success rule (per assembly, in ``config/aloha``); ``assembled_plug_z`` is filled in from
    the assembly's geometry."""

    xy_threshold: float = 0.0025
    """Largest distance between the plug's and the socket's axes [m]; at least the fit's radial play."""
    depth_tolerance: float = 0.002
    """Largest height of the plug above its assembled pose [m] (insertion depth reached)."""
    overshoot_tolerance: float = 0.003
    """Largest depth of the plug below its assembled pose [m] (a plug pushed or fallen past it is not assembled)."""
    max_tilt_deg: float = 10.0
    """Largest angle between the plug's and the socket's axes [deg]."""
    max_speed: float | None = None
    """Largest plug speed relative to the socket [m/s]; None: not checked."""
    assembled_plug_z: float | None = None
    """Plug origin height in the socket frame when assembled [m] (set from the geometry)."""


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
    """Lateral error [m], height above the assembled pose [m] (negative below it) and tilt [rad] of the plug.

    Returns:
        Three tensors of shape (num_envs,).
    """
    rel_pos, rel_z = plug_pose_in_socket(env)
    xy_error = torch.linalg.norm(rel_pos[:, :2], dim=-1)
    height_left = rel_pos[:, 2] - assembled_plug_z
    tilt = torch.acos(rel_z[:, 2].clamp(-1.0, 1.0))
    return xy_error, height_left, tilt


def relative_speed(env: ManagerBasedRLEnv) -> torch.Tensor:
    """Plug speed relative to the socket's origin [m/s]. Tensor of shape (num_envs,)."""
    plug, socket = env.scene["plug"].data, env.scene["socket"].data
    return torch.linalg.norm(plug.root_lin_vel_w.torch - socket.root_lin_vel_w.torch, dim=-1)


def assembly_success(env: ManagerBasedRLEnv, rule: AssemblySuccessCfg) -> torch.Tensor:
    """Whether each env's plug is assembled by ``rule`` (see the module docstring).

    Returns:
        Bool tensor of shape (num_envs,).
    """
    if rule.assembled_plug_z is None:
        raise ValueError("AssemblySuccessCfg.assembled_plug_z is unset: build the cfg through apply_assembly()")
    xy_error, height_left, tilt = assembly_error(env, rule.assembled_plug_z)
    ok = (
        (xy_error < rule.xy_threshold)
        & (height_left < rule.depth_tolerance)
        & (height_left > -rule.overshoot_tolerance)
        & (tilt < math.radians(rule.max_tilt_deg))
    )
    if rule.max_speed is not None:
        ok &= relative_speed(env) < rule.max_speed
    return ok
