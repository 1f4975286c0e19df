"""Batched forward and inverse kinematics of the twin's arms, in torch, from the same spec as the USD.

Legend: B batch (usually envs), 6 arm joints (waist .. wrist_rotate), poses as 4x4 homogeneous
matrices in the env frame (table top at z = 0).

Written by hand rather than through a kinematics library because it must run batched on the env's
device (CPU or GPU) inside the scripted expert's per-step loop, and the chain is only six joints.
"""

from __future__ import annotations


import torch

from ..utils.rotations import axis_angle_from_matrix
from .aloha import ARM_JOINT_SPECS, BASE_POSES, PAD_SIZE, quat_from_rpy, quat_to_matrix

ARM_SPECS = tuple(s for s in ARM_JOINT_SPECS if s.kind == "revolute")
"""The six revolute arm joints, in chain order."""

GRASP_OFFSET_X = ARM_JOINT_SPECS[6].origin_xyz[0] + ARM_JOINT_SPECS[8].origin_xyz[0]
"""Distance from the gripper link origin to the point midway between the pad centres, along x [m]."""

PAD_HALF_HEIGHT = 0.5 * PAD_SIZE[2]


def _axis_rotation(axis: str, angle: torch.Tensor) -> torch.Tensor:
    """Rotation matrices about a principal axis. Tensor of shape (B, 3, 3)."""
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    if axis == "X":
        rows = [one, zero, zero, zero, c, -s, zero, s, c]
    elif axis == "Y":
        rows = [c, zero, s, zero, one, zero, -s, zero, c]
    else:
        rows = [c, -s, zero, s, c, zero, zero, zero, one]
    return torch.stack(rows, dim=-1).reshape(*angle.shape, 3, 3)


class ArmKinematics:
    """FK/IK of one arm ("left" or "right") of the twin, batched over B.

    The tool frame ("grasp frame") sits midway between the two pad centres: x along the fingers
    (approach), y the closing axis, z across the pads.
    """

    def __init__(self, side: str, device: str | torch.device = "cpu"):
        if side not in BASE_POSES:
            raise ValueError(f"side must be 'left' or 'right', got {side!r}")
        self.side = side
        self.device = torch.device(device)
        pos, yaw = BASE_POSES[side]
        base = torch.eye(4, dtype=torch.float64)
        base[:3, :3] = torch.from_numpy(quat_to_matrix(quat_from_rpy(0.0, 0.0, yaw)))
        base[:3, 3] = torch.tensor(pos, dtype=torch.float64)
        self._base = base.to(self.device)
        origins = []
        for spec in ARM_SPECS:
            t = torch.eye(4, dtype=torch.float64)
            t[:3, :3] = torch.from_numpy(quat_to_matrix(quat_from_rpy(*spec.origin_rpy)))
            t[:3, 3] = torch.tensor(spec.origin_xyz, dtype=torch.float64)
            origins.append(t.to(self.device))
        self._origins = origins
        self._tool = torch.eye(4, dtype=torch.float64, device=self.device)
        self._tool[0, 3] = GRASP_OFFSET_X
        self.lower = torch.tensor([s.limits[0] for s in ARM_SPECS], dtype=torch.float64, device=self.device)
        self.upper = torch.tensor([s.limits[1] for s in ARM_SPECS], dtype=torch.float64, device=self.device)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        """Grasp-frame poses for arm joint positions ``q`` (B, 6). Tensor of shape (B, 4, 4), float64."""
        q = q.to(self.device, torch.float64)
        t = self._base.expand(q.shape[0], 4, 4)
        for i, spec in enumerate(ARM_SPECS):
            motion = torch.zeros(q.shape[0], 4, 4, dtype=torch.float64, device=self.device)
            motion[:, :3, :3] = _axis_rotation(spec.axis, q[:, i])
            motion[:, 3, 3] = 1.0
            t = t @ self._origins[i] @ motion
        return t @ self._tool

    def jacobian(self, q: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
        """Geometric Jacobian of the grasp frame (linear; angular in the env frame) by central
        differences. Tensor of shape (B, 6, 6)."""
        q = q.to(self.device, torch.float64)
        b = q.shape[0]
        dq = torch.eye(6, dtype=torch.float64, device=self.device) * eps
        qs = torch.cat([(q[:, None, :] + dq).reshape(-1, 6), (q[:, None, :] - dq).reshape(-1, 6)])
        poses = self.forward(qs)
        plus, minus = poses[: b * 6].reshape(b, 6, 4, 4), poses[b * 6 :].reshape(b, 6, 4, 4)
        lin = (plus[..., :3, 3] - minus[..., :3, 3]) / (2 * eps)
        dr = (plus[..., :3, :3] - minus[..., :3, :3]) / (2 * eps)  # dR/dq
        r = self.forward(q)[:, None, :3, :3]
        skew = dr @ r.transpose(-1, -2)  # [w]_x
        ang = torch.stack([skew[..., 2, 1], skew[..., 0, 2], skew[..., 1, 0]], dim=-1)
        return torch.cat([lin, ang], dim=-1).transpose(1, 2)

    def inverse(
        self,
        target: torch.Tensor,
        q_init: torch.Tensor,
        iterations: int = 60,
        damping: float = 0.05,
        rot_weight: float = 0.3,
        tol: float = 1e-5,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Damped-least-squares IK for grasp-frame poses ``target`` (B, 4, 4), from ``q_init`` (B, 6).

        Args:
            rot_weight: Metres per radian when weighing orientation against position errors.

        Returns:
            Joint positions (B, 6) within the limits, and the final position error [m] (B,).
        """
        q = q_init.to(self.device, torch.float64).clone()
        target = target.to(self.device, torch.float64)
        eye = torch.eye(6, dtype=torch.float64, device=self.device)
        weight = torch.tensor([1, 1, 1, rot_weight, rot_weight, rot_weight], dtype=torch.float64, device=self.device)
        for _ in range(iterations):
            pose = self.forward(q)
            err = torch.cat([target[:, :3, 3] - pose[:, :3, 3], rotation_error(pose[:, :3, :3], target[:, :3, :3])], -1)
            if err[:, :3].norm(dim=-1).max() < tol and err[:, 3:].norm(dim=-1).max() < tol:
                break
            jac = self.jacobian(q) * weight[None, :, None]
            e = err * weight
            jjt = jac @ jac.transpose(1, 2) + (damping**2) * eye
            dq = (jac.transpose(1, 2) @ torch.linalg.solve(jjt, e[..., None]))[..., 0]
            q = torch.clamp(q + dq.clamp(-0.3, 0.3), self.lower, self.upper)
        pose = self.forward(q)
        return q, (target[:, :3, 3] - pose[:, :3, 3]).norm(dim=-1)


def rotation_error(current: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Axis-angle vector rotating ``current`` onto ``target`` (both (B, 3, 3)), in the env frame. (B, 3)."""
    return axis_angle_from_matrix(target @ current.transpose(-1, -2))


def frame_from_axes(position: torch.Tensor, x_axis: torch.Tensor, y_axis: torch.Tensor) -> torch.Tensor:
    """Pose (B, 4, 4) with the given origin and x axis, y made orthogonal to x (Gram-Schmidt)."""
    x = torch.nn.functional.normalize(x_axis.to(torch.float64), dim=-1)
    y = y_axis.to(torch.float64) - (y_axis.to(torch.float64) * x).sum(-1, keepdim=True) * x
    y = torch.nn.functional.normalize(y, dim=-1)
    z = torch.cross(x, y, dim=-1)
    pose = torch.zeros(*position.shape[:-1], 4, 4, dtype=torch.float64, device=position.device)
    pose[..., :3, 0], pose[..., :3, 1], pose[..., :3, 2] = x, y, z
    pose[..., :3, 3] = position.to(torch.float64)
    pose[..., 3, 3] = 1.0
    return pose


__all__ = ["ArmKinematics", "rotation_error", "frame_from_axes", "GRASP_OFFSET_X"]
