"""The critic's part pose is continuous: two nearly equal orientations give nearly equal observations."""

import math
from types import SimpleNamespace

import torch

from vt_refine.tasks.assembly.mdp.observations import part_pose_env


def _env_with_part_yaw(yaws_deg):
    """A stand-in env holding one part per env at yaw ``yaws_deg`` about z (quaternions x, y, z, w as Newton gives)."""
    half = torch.tensor(yaws_deg, dtype=torch.float32).deg2rad() / 2
    quat = torch.stack([torch.zeros_like(half), torch.zeros_like(half), half.sin(), half.cos()], dim=-1)
    n = len(yaws_deg)
    data = SimpleNamespace(root_pos_w=SimpleNamespace(torch=torch.ones(n, 3)),
                           root_quat_w=SimpleNamespace(torch=quat))
    return SimpleNamespace(scene=_Scene({"plug": SimpleNamespace(data=data)}, torch.zeros(n, 3)))


class _Scene(dict):
    def __init__(self, items, env_origins):
        super().__init__(items)
        self.env_origins = env_origins


def test_a_yaw_across_180_degrees_changes_the_pose_observation_a_little():
    # the peg rests near yaw 180 deg, where a w >= 0 quaternion flips sign: 179 and 181 deg were 2 apart
    obs = part_pose_env(_env_with_part_yaw([179.0, 181.0, 90.0]), SimpleNamespace(name="plug"))
    assert obs.shape == (3, 9)
    assert torch.linalg.norm(obs[0] - obs[1]) < 2 * math.radians(2.0)
    # and it still tells orientations apart: 90 deg away is far
    assert torch.linalg.norm(obs[0] - obs[2]) > 1.0
    # position first, then the rotation's x and y columns (unit vectors)
    assert torch.allclose(obs[:, :3], torch.ones(3, 3))
    assert torch.allclose(torch.linalg.norm(obs[:, 3:6], dim=-1), torch.ones(3), atol=1e-6)
    assert torch.allclose(obs[2, 3:6], torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)
