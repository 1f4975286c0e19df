"""Where a peg-in-hole policy puts the parts: socket and plug positions over one batch of evaluation episodes,
read against the expert's set-down spot and against recorded demos (``scripts/trace_parts.py`` prints them)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..expert.scripted_expert import ScriptedExpertCfg
from .checkpoint import Checkpoint

TASK = "VTRefine-PegInHole-Aloha"


@dataclass
class PartTrace:
    """Per control step of one batch of episodes (env frame, m): ``plug`` and ``socket`` positions, arrays of
    shape (T, E, 3), and ``done`` flags, shape (T, E)."""

    plug: np.ndarray
    socket: np.ndarray
    done: np.ndarray

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


def trace_policy(checkpoint: Checkpoint, num_envs: int, seed: int, device: str = "cpu") -> PartTrace:
    """Run one batch of ``num_envs`` episodes of the checkpoint's deterministic chain (the initial states of
    ``vt-refine evaluate --seed seed``'s first batch) and record where the parts are after every step."""
    import torch

    from isaaclab_rl.rsl_rl import RslRlVecEnvWrapper

    from .envs import make_env

    checkpoint.check_task(TASK)
    env = make_env(TASK, num_envs=num_envs, device=device, seed=seed)
    try:
        vec = RslRlVecEnvWrapper(env)
        env.reset(seed=seed)
        actor = checkpoint.eval_actor(vec.get_observations(), vec.num_actions, device)
        generator = torch.Generator(device=device).manual_seed(seed)
        obs = vec.get_observations()
        origins = env.scene.env_origins
        plug, socket, done = [], [], []
        with torch.no_grad():
            for _ in range(int(env.max_episode_length) // actor.act_steps):
                chunk = actor.act(obs, deterministic=True, generator=generator).actions
                for i in range(actor.act_steps):
                    obs, _, dones, _ = vec.step(chunk[:, i])
                    plug.append(env.scene["plug"].data.root_pos_w.torch - origins)
                    socket.append(env.scene["socket"].data.root_pos_w.torch - origins)
                    done.append(dones.bool())
        return PartTrace(*(torch.stack(rows).cpu().numpy() for rows in (plug, socket, done)))
    finally:
        env.close()


def demo_placement_at(path, step: int) -> tuple[np.ndarray, np.ndarray]:
    """The same two distances [mm] for each demo of a file, from its recorded critic state (16 joints, then the
    plug's and the socket's poses, each starting with the position). Returns two arrays of shape (num_demos,)."""
    from ..data.hdf5_dataset import DemoReader

    spot = np.asarray(ScriptedExpertCfg().socket_place_xy)
    offs, gaps = [], []
    with DemoReader(path) as reader:
        for episode in range(len(reader)):
            critic = reader.read(episode, "states/critic")
            k, socket_at = min(step, len(critic) - 1), 16 + (critic.shape[1] - 16) // 2
            socket_xy, plug_xy = critic[k, socket_at:socket_at + 2], critic[k, 16:18]
            offs.append(np.linalg.norm(socket_xy - spot) * 1e3)
            gaps.append(np.linalg.norm(plug_xy - socket_xy) * 1e3)
    return np.asarray(offs), np.asarray(gaps)
