"""The ALOHA twin description: USD content, joint order/limits, and the torch kinematics (no simulation)."""

import math

import numpy as np
import pytest
import torch

from vt_refine.assets import aloha
from vt_refine.assets.kinematics import ArmKinematics, frame_from_axes


def test_joint_order_is_the_facts_order():
    arm = ["waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "left_finger", "right_finger"]
    assert aloha.ALOHA_JOINT_NAMES == tuple([f"left_{j}" for j in arm] + [f"right_{j}" for j in arm])


def test_usd_holds_the_real_kinematics(tmp_path):
    from pxr import Usd, UsdPhysics

    path = tmp_path / "aloha.usda"
    aloha.write_aloha_usd(path)
    stage = Usd.Stage.Open(str(path))
    joints = {}
    for prim in stage.Traverse():
        if prim.IsA(UsdPhysics.RevoluteJoint) or prim.IsA(UsdPhysics.PrismaticJoint):
            joints[prim.GetName()] = prim
    assert set(joints) == set(aloha.ALOHA_JOINT_NAMES)
    limits = aloha.joint_limits()
    for name, prim in joints.items():
        lo = prim.GetAttribute("physics:lowerLimit").Get()
        hi = prim.GetAttribute("physics:upperLimit").Get()
        if prim.IsA(UsdPhysics.RevoluteJoint):
            lo, hi = math.radians(lo), math.radians(hi)
        assert lo == pytest.approx(limits[name][0], abs=1e-5) and hi == pytest.approx(limits[name][1], abs=1e-5)
    # the elbow sits 0.05955 m forward and 0.3 m up from the shoulder (ViperX-300 S)
    elbow = joints["left_elbow"]
    assert np.allclose(np.array(elbow.GetAttribute("physics:localPos0").Get()), [0.05955, 0.0, 0.3], atol=1e-6)
    assert elbow.GetAttribute("physics:axis").Get() == "Y"
    # fingers: prismatic along y, 42 mm stroke, mirrored
    assert limits["left_left_finger"] == (0.0, 0.042) and limits["left_right_finger"] == (-0.042, 0.0)
    # the pads are 26 x 3 x 66.65 mm
    assert aloha.PAD_SIZE == pytest.approx((0.06665, 0.003, 0.026))


def test_bases_face_each_other():
    poses = aloha.link_poses_at_zero()
    left, right = poses["left_base_link"], poses["right_base_link"]
    assert np.allclose(left[:3, 3], [-0.005, -0.525, 0.02]) and np.allclose(right[:3, 3], [0.005, 0.525, 0.02])
    # each arm's forward (x) axis points at the other arm
    assert np.allclose(left[:3, 0], [0, 1, 0], atol=1e-9) and np.allclose(right[:3, 0], [0, -1, 0], atol=1e-9)


def test_fk_matches_the_link_chain_at_zero():
    poses = aloha.link_poses_at_zero()
    for side in ("left", "right"):
        kin = ArmKinematics(side)
        tool = kin.forward(torch.zeros(1, 6))[0].numpy()
        gripper = poses[f"{side}_gripper_link"]
        expected = gripper[:3, 3] + gripper[:3, 0] * (0.042825 + 0.025875 + 0.10)
        assert np.allclose(tool[:3, 3], expected, atol=1e-9)
        # the pad midpoint: halfway between the two pads' centres at closed fingers
        pads = 0.5 * (poses[f"{side}_left_finger_pad"][:3, 3] + poses[f"{side}_right_finger_pad"][:3, 3])
        assert np.allclose(tool[:3, 3], pads, atol=1e-9)


def test_ik_reaches_reachable_poses_and_respects_limits():
    kin = ArmKinematics("left")
    gen = torch.Generator().manual_seed(0)
    q_true = (torch.rand(16, 6, generator=gen, dtype=torch.float64) - 0.5) * torch.tensor([1.2, 0.8, 0.8, 1.0, 0.8, 1.0])
    target = kin.forward(q_true)
    q, err = kin.inverse(target, torch.zeros(16, 6, dtype=torch.float64), iterations=200)
    # damped least squares from a cold start: sub-millimetre everywhere, micrometres typically
    assert float(err.max()) < 5e-4 and float(err.median()) < 1e-5
    assert torch.all(q >= kin.lower - 1e-9) and torch.all(q <= kin.upper + 1e-9)
    # and an unreachable target (2 m away) is not claimed as reached
    far = frame_from_axes(torch.tensor([[0.0, 1.5, 1.0]]), torch.tensor([[0.0, 1.0, 0.0]]), torch.tensor([[-1.0, 0, 0]]))
    _, err_far = kin.inverse(far, torch.zeros(1, 6, dtype=torch.float64), iterations=100)
    assert float(err_far[0]) > 0.5
