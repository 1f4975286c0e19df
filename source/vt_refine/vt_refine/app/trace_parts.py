"""Where a peg-in-hole policy puts the parts: socket and plug positions over one batch of evaluation episodes,
read against the expert's set-down spot and against recorded demos, and how the left hand holds the socket
(``scripts/trace_parts.py`` prints them)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..assets.aloha import ALOHA_JOINT_NAMES
from ..expert.scripted_expert import ScriptedExpertCfg
from ..task_ids import modality_of, task_for_modality
from .checkpoint import Checkpoint

TASK = "VTRefine-PegInHole-Aloha"


@dataclass
class PartTrace:
    """Per control step of one batch of episodes (env frame, m): ``plug`` and ``socket`` positions, arrays of
    shape (T, E, 3), ``done`` flags, shape (T, E), and the measured ``joints`` [rad, m], shape (T, E, 16)."""

    plug: np.ndarray
    socket: np.ndarray
    done: np.ndarray
    joints: np.ndarray

    def placement_at(self, step: int) -> list[tuple[float, float] | None]:
        """Per episode at ``step``: (socket's distance from the expert's spot, plug - socket distance), both in
        the xy plane [mm]; None for an episode that ended before."""
        spot = np.asarray(ScriptedExpertCfg().socket_place_xy)
        t = min(step, len(self.plug) - 1)
        rows = []
        for e in range(self.plug.shape[1]):
            if self.done[:t, e].any():
                rows.append(None)
                continue
            off = float(np.linalg.norm(self.socket[t, e, :2] - spot) * 1e3)
            gap = float(np.linalg.norm(self.plug[t, e, :2] - self.socket[t, e, :2]) * 1e3)
            rows.append((off, gap))
        return rows

    def left_holds(self, step: int) -> list[LeftHold]:
        """Per episode: how the left hand holds the socket (see :func:`left_hold`), read only up to the step the
        episode ends (after it the env has reset the parts); ``step`` past the end reads the last step."""
        ends = [int(np.argmax(d)) + 1 if d.any() else len(d) for d in self.done.T]
        return [left_hold(self.joints[:end, e], self.socket[:end, e], step) for e, end in enumerate(ends)]


LIFT_HEIGHT = 0.005
"""The socket counts as lifted once it is this far above its first recorded height [m]."""


@dataclass
class LeftHold:
    """How the left hand holds the socket in one episode. Positions in mm; "in hand" is the socket's origin in the
    left tool frame (x along the fingers, y the closing axis, z across the pads), array of shape (3,)."""

    lift_step: int | None
    """First step with the socket lifted (None: never lifted)."""
    in_hand_at_lift: np.ndarray | None
    in_hand_at_step: np.ndarray
    tool_xy_at_step: np.ndarray
    """The left tool frame's origin in the env's xy plane, shape (2,)."""


def left_hold(joints: np.ndarray, socket: np.ndarray, step: int) -> LeftHold:
    """The left hand's hold of the socket from one episode's measured ``joints`` (T, 16) and socket positions
    (T, 3) [m], by forward kinematics: where in the hand the socket sits when it first leaves the table and at
    ``step``, and where the hand is then. Tells a socket grasped off-centre from a hand that goes elsewhere."""
    import torch

    from ..assets.kinematics import ArmKinematics

    tool = ArmKinematics("left").forward(torch.as_tensor(joints[:, 0:6], dtype=torch.float64)).numpy()
    in_hand = np.einsum("tji,tj->ti", tool[:, :3, :3], socket - tool[:, :3, 3]) * 1e3
    lifted = np.flatnonzero(socket[:, 2] > socket[0, 2] + LIFT_HEIGHT)
    lift = int(lifted[0]) if len(lifted) else None
    t = min(step, len(joints) - 1)
    return LeftHold(lift, None if lift is None else in_hand[lift], in_hand[t], tool[t, :2, 3] * 1e3)


def trace_policy(checkpoint: Checkpoint, num_envs: int, seed: int, device: str = "cpu") -> PartTrace:
    """Run one batch of ``num_envs`` first episodes exactly as ``vt-refine evaluate --seed seed`` runs its first
    batch (same initial states, same rollout loop and hold rule) and record where the parts are after every step."""
    import torch

    from isaaclab_rl.rsl_rl import RslRlVecEnvWrapper

    from ..rl.dppo.multistep import first_episode_returns
    from .envs import hold_last_joints, make_env

    task = task_for_modality(TASK, modality_of(checkpoint.task or TASK))  # the visual policy runs on its variant
    checkpoint.check_task(task)
    env = make_env(task, num_envs=num_envs, device=device, seed=seed)
    try:
        vec = RslRlVecEnvWrapper(env)
        env.reset(seed=seed)
        actor = checkpoint.eval_actor(vec.get_observations(), vec.num_actions, device)
        recorder = _RecordParts(vec, env)
        with torch.no_grad():
            first_episode_returns(actor, recorder, deterministic=True, hold_action_fn=hold_last_joints(actor, vec),
                                  generator=torch.Generator(device=device).manual_seed(seed))
        return PartTrace(*(torch.stack(rows).cpu().numpy() for rows in (recorder.plug, recorder.socket,
                                                                         recorder.done, recorder.joints)))
    finally:
        env.close()


class _RecordParts:
    """The rsl-rl ``VecEnv`` ``vec``, recording the plug's and the socket's positions (env frame) and the robot's
    joints after each step."""

    def __init__(self, vec, env):
        self._vec, self._env = vec, env
        self.plug, self.socket, self.done, self.joints = [], [], [], []

    def __getattr__(self, name):
        return getattr(self._vec, name)

    def step(self, actions):
        out = self._vec.step(actions)
        origins = self._env.scene.env_origins
        self.plug.append(self._env.scene["plug"].data.root_pos_w.torch - origins)
        self.socket.append(self._env.scene["socket"].data.root_pos_w.torch - origins)
        self.done.append(out[2].bool())
        self.joints.append(out[0]["critic"][:, :len(ALOHA_JOINT_NAMES)])  # the critic state opens with the 16 joints
        return out


def demo_placement_at(path, step: int) -> tuple[np.ndarray, np.ndarray, list[LeftHold]]:
    """The same two distances [mm] for each demo of a file, from its recorded critic state (16 joints, then the
    plug's and the socket's poses, each starting with the position; either pose size), and each demo's left hold.
    Returns two arrays of shape (num_demos,) and a list of num_demos holds."""
    from ..data.hdf5_dataset import DemoReader

    spot = np.asarray(ScriptedExpertCfg().socket_place_xy)
    num_joints = len(ALOHA_JOINT_NAMES)
    offs, gaps, holds = [], [], []
    with DemoReader(path) as reader:
        for episode in range(len(reader)):
            critic = reader.read(episode, "states/critic").astype(np.float64)
            k, socket_at = min(step, len(critic) - 1), num_joints + (critic.shape[1] - num_joints) // 2
            socket_xy, plug_xy = critic[k, socket_at:socket_at + 2], critic[k, num_joints:num_joints + 2]
            offs.append(np.linalg.norm(socket_xy - spot) * 1e3)
            gaps.append(np.linalg.norm(plug_xy - socket_xy) * 1e3)
            holds.append(left_hold(critic[:, :num_joints], critic[:, socket_at:socket_at + 3], step))
    return np.asarray(offs), np.asarray(gaps), holds
