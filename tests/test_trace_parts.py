"""The part-placement figures of ``app.trace_parts`` on scripted traces and demos with known positions."""

import numpy as np
import pytest

from vt_refine.app.trace_parts import PartTrace, demo_placement_at
from vt_refine.data.demo_writer import DemoWriter

TASK = "VTRefine-PegInHole-Aloha"


def test_placement_reads_the_socket_off_the_spot_and_the_plug_off_the_socket():
    steps, envs = 5, 3
    plug, socket = np.zeros((steps, envs, 3)), np.zeros((steps, envs, 3))
    socket[:, 0, :2] = (0.003, 0.004)  # 5 mm off the expert's spot (0, 0)
    plug[:, 0, :2] = (0.003, 0.014)  # 10 mm from that socket
    socket[:, 1, :2] = (0.0, 0.030)
    plug[:, 1, :2] = (0.0, 0.030)  # on the socket's axis, 30 mm off the spot
    done = np.zeros((steps, envs), bool)
    done[1, 2] = True  # episode 2 ended before step 3
    rows = PartTrace(plug, socket, done, np.zeros((steps, envs, 16))).placement_at(3)
    assert rows[0] == pytest.approx((5.0, 10.0))
    assert rows[1] == pytest.approx((30.0, 0.0))
    assert rows[2] is None


@pytest.mark.parametrize("pose_dim", [7, 9])  # quaternion (files before the 6-D rotation) or position + 6-D
def test_demo_placement_finds_the_socket_in_either_critic_layout(tmp_path, pose_dim):
    dim = 16 + 2 * pose_dim
    critic = np.zeros((4, dim), np.float32)
    critic[:, 16:18] = (0.0, 0.012)  # plug
    critic[:, 16 + pose_dim:18 + pose_dim] = (0.0, 0.002)  # socket, 2 mm off the spot, 10 mm from the plug
    path = tmp_path / "demos.hdf5"
    expected = {"actions": ((16,), "float32"), "obs/joint_pos": ((16,), "float32"),
                "states/critic": ((dim,), "float32")}
    with DemoWriter(path, TASK, {}, expected) as writer:
        writer.append_episode({"joint_pos": np.zeros((4, 16), np.float32)}, np.zeros((4, 16), np.float32),
                              states={"critic": critic}, success=True, seed=0)
    offs, gaps, holds = demo_placement_at(path, 2)
    assert offs == pytest.approx([2.0], abs=1e-3) and gaps == pytest.approx([10.0], abs=1e-3)
    assert holds[0].lift_step is None  # the socket never leaves the table


def test_left_hold_finds_the_socket_in_the_hand_while_the_arm_moves():
    import torch

    from vt_refine.assets.kinematics import ArmKinematics

    steps = 6
    joints = np.zeros((steps, 16))
    joints[:, 0] = np.linspace(-0.3, 0.3, steps)  # the waist turns
    joints[:, 1] = np.linspace(0.0, 0.2, steps)  # the shoulder lifts
    tool = ArmKinematics("left").forward(torch.from_numpy(joints[:, :6])).numpy()
    held = np.array([0.021, 0.001, -0.022])  # socket origin in the tool frame [m]
    socket = tool[:, :3, 3] + np.einsum("tij,j->ti", tool[:, :3, :3], held)
    socket[:2] = socket[2] - np.array([0.0, 0.0, 0.01])  # on the table until step 2, then lifted with the hand
    hold = PartTrace(socket[:, None], socket[:, None], np.zeros((steps, 1), bool), joints[:, None]).left_holds(4)[0]
    assert hold.lift_step == 2
    assert hold.in_hand_at_lift == pytest.approx(held * 1e3, abs=1e-6)
    assert hold.in_hand_at_step == pytest.approx(held * 1e3, abs=1e-6)
    assert hold.tool_xy_at_step == pytest.approx(tool[4, :2, 3] * 1e3)


def test_left_hold_ignores_the_steps_after_the_episode_ended():
    steps = 6
    socket = np.zeros((steps, 1, 3))
    socket[4:, 0, 2] = 0.05  # "lifted" only after the reset at step 3: the next episode's parts
    done = np.zeros((steps, 1), bool)
    done[3, 0] = True
    hold = PartTrace(socket, socket, done, np.zeros((steps, 1, 16))).left_holds(5)[0]
    assert hold.lift_step is None
