"""Shared test settings: CPU only, one torch thread (the CI machine has 2 cores), quiet Warp."""

import os

os.environ.setdefault("WARP_LOG_LEVEL", "error")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def repo_root():
    from pathlib import Path

    return Path(__file__).resolve().parents[1]


def built_env(task: str, cfg_hook=None, num_envs: int = 2):
    """A reset CPU env of ``task`` (seed 0) for a module-scoped fixture; the caller closes it."""
    from vt_refine.app.envs import make_env

    env = make_env(task, num_envs=num_envs, device="cpu", seed=0, cfg_hook=cfg_hook)
    env.reset()
    return env


def hold_action(env, joints: str = "default_joint_pos"):
    """The action that holds the robot's ``joints`` (a joint data field: the home pose, or ``joint_pos_target``):
    the targets of the action's joints mapped from their limits onto [-1, 1]. Tensor of shape (E, Da)."""
    term = env.action_manager.get_term("joint_pos")
    robot = env.scene["robot"]
    q = getattr(robot.data, joints).torch[:, term._joint_ids]
    lo, hi = robot.data.joint_pos_limits.torch[:, term._joint_ids].unbind(-1)
    return 2 * (q - lo) / (hi - lo) - 1
