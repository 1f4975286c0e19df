"""Data container of :class:`~.sensor.PiezoTactileSensor`.

Legend: E envs, P pads (4), R x C taxel grid (12 x 32), N = R * C taxels per pad (384).
"""

from __future__ import annotations

import torch

__all__ = ["PiezoTactileSensorData"]


class PiezoTactileSensorData:
    """Latest readings of the pads; the tensors are allocated once and refreshed in place."""

    def __init__(self, num_envs: int = 0, num_pads: int = 0, rows: int = 0, cols: int = 0, device: str = "cpu"):
        grid = (num_envs, num_pads, rows, cols)
        points = (num_envs, num_pads, rows * cols, 3)
        self.force = torch.zeros(grid, device=device)
        """Tensor of shape (E, P, R, C): taxel readings after the realism knobs [N]."""
        self.force_ideal = torch.zeros(grid, device=device)
        """Tensor of shape (E, P, R, C): Kelvin-Voigt forces before the realism knobs [N]."""
        self.normalized = torch.zeros(grid, device=device)
        """Tensor of shape (E, P, R, C): readings after the max-or-fixed normalisation [1]."""
        self.depth = torch.zeros(grid, device=device)
        """Tensor of shape (E, P, R, C): penetration depth of each taxel [m]."""
        self.contact = torch.zeros(grid, dtype=torch.bool, device=device)
        """Bool tensor of shape (E, P, R, C): taxel inside a target."""
        self.target_index = torch.full((num_envs, num_pads, rows * cols), -1, dtype=torch.int32, device=device)
        """Int32 tensor of shape (E, P, N): touched target (order of ``target_asset_names``), -1 when none."""
        self.taxel_pos_w = torch.zeros(points, device=device)
        """Tensor of shape (E, P, N, 3): taxel positions in the world frame [m]."""
        self.taxel_pos_frame = torch.zeros(points, device=device)
        """Tensor of shape (E, P, N, 3): taxel positions in the output frame [m]."""
        self.tactile_points = torch.zeros(num_envs, num_pads * rows * cols, 4, device=device)
        """Tensor of shape (E, P * N, 4): (x, y, z, normalised reading) in the output frame, pads in order,
        taxels row-major; the tactile part of the merged visuo-tactile cloud."""
        self.output_frame_pos_w = torch.zeros(num_envs, 3, device=device)
        """Tensor of shape (E, 3): output frame origin in the world [m]."""
        self.output_frame_quat_w = torch.zeros(num_envs, 4, device=device)
        """Tensor of shape (E, 4): output frame orientation in the world (x, y, z, w)."""
