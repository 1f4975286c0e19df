"""Termination terms: success (optional), a part off the table, a physics blow-up."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch

from isaaclab.managers import SceneEntityCfg

from .success import AssemblySuccessCfg, assembly_success

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedRLEnv

__all__ = ["assembled", "part_off_table", "physics_blowup"]

_LOG = logging.getLogger("vt_refine")


def assembled(env: ManagerBasedRLEnv, rule: AssemblySuccessCfg) -> torch.Tensor:
    """Episode ends once the parts are assembled. Bool tensor of shape (num_envs,)."""
    return assembly_success(env, rule)


def part_off_table(
    env: ManagerBasedRLEnv,
    table_half_extent: tuple[float, float] = (0.6, 0.4),
    min_height: float = -0.05,
    asset_names: tuple[str, ...] = ("plug", "socket"),
) -> torch.Tensor:
    """A part left the table: outside its x/y half extents [m] or below ``min_height`` [m] (env frame).

    Returns:
        Bool tensor of shape (num_envs,).
    """
    out = torch.zeros(env.num_envs, dtype=torch.bool, device=env.device)
    half = torch.tensor(table_half_extent, device=env.device)
    for name in asset_names:  # two assets, not a per-env loop
        pos = env.scene[name].data.root_pos_w.torch - env.scene.env_origins
        out |= (pos[:, :2].abs() > half).any(dim=-1) | (pos[:, 2] < min_height)
    return out


def physics_blowup(
    env: ManagerBasedRLEnv,
    max_speed: float = 20.0,
    asset_names: tuple[str, ...] = ("plug", "socket"),
    robot_cfg: SceneEntityCfg = SceneEntityCfg("robot"),
) -> torch.Tensor:
    """A simulation blow-up: NaN/inf in the robot or part states, or a part faster than ``max_speed``
    [m/s]. Such envs are reset like any ended episode, so training goes on. Isaac Lab's termination manager
    logs how many envs ended this way as ``Episode_Termination/physics_blowup`` (TensorBoard); the running total
    since the env was built is kept in ``env.extras["physics_blowups_total"]`` and each blow-up is logged as a
    warning.

    Returns:
        Bool tensor of shape (num_envs,).
    """
    robot = env.scene[robot_cfg.name].data
    bad = ~torch.isfinite(robot.joint_pos.torch).all(dim=-1) | ~torch.isfinite(robot.joint_vel.torch).all(dim=-1)
    for name in asset_names:
        data = env.scene[name].data
        pose, vel = data.root_pose_w.torch, data.root_vel_w.torch
        bad |= ~torch.isfinite(pose).all(dim=-1) | ~torch.isfinite(vel).all(dim=-1)
        bad |= torch.linalg.norm(torch.nan_to_num(vel[:, :3], nan=0.0), dim=-1) > max_speed
    if bad.any():  # rare: the .any() sync costs nothing next to a physics step
        count = int(bad.sum())
        env.extras["physics_blowups_total"] = env.extras.get("physics_blowups_total", 0) + count
        _LOG.warning("physics blow-up in %d env(s) %s: reset (total so far %d)", count,
                     bad.nonzero().flatten()[:8].tolist(), env.extras["physics_blowups_total"])
    return bad
