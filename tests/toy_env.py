"""A point-reaching task in pure torch with the observation layout of the assembly tasks, for DPPO tests.

Symbols used in shapes:
    E   envs
    D   point dim (the "joints"; 2 by default)
    To  observation history
    Ta  chunk length

The point starts uniformly in a box and must come within ``success_radius`` of a fixed goal; actions are
absolute target positions (like the twin's joint-position targets), followed at most ``max_speed`` per
step. Reward: 1 at the success step (the episode then ends), else 0; a time limit ends the others.

Observations (rsl-rl TensorDict, like the Isaac Lab tasks): group "policy" holding ``joint_pos`` (E, To, D)
(history already stacked, oldest first; after a reset every slot holds the new position) and group
"critic", the flat asymmetric state (E, 2 D + 1) = position, goal, elapsed fraction of the episode.

It also provides a scripted expert whose aim can be biased and noisy, to pre-train deliberately poor
diffusion policies by behaviour cloning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from rsl_rl.env import VecEnv
from tensordict import TensorDict
from torch.utils.data import Dataset

from vt_refine.policies.diffusion import (DiffusionCfg, DiffusionPolicyCfg, DiffusionProfile, PointEncoderCfg, PretrainCfg,
                                         StateEncoderCfg, UnetCfg, pretrain)

__all__ = ["PointReachCfg", "PointReachEnv", "ReachDemoDataset", "collect_reach_demos", "toy_policy_cfg"]


@dataclass
class PointReachCfg:
    """Point-reaching task (units: arbitrary lengths, steps)."""

    num_envs: int = 64
    """E."""
    dim: int = 2
    """D, size of the point (and of the actions)."""
    obs_steps: int = 2
    """To, history length of the policy observation."""
    episode_length: int = 12
    """Env steps before a time-out."""
    goal: tuple[float, ...] = (0.3, -0.2)
    """Goal position (D entries)."""
    success_radius: float = 0.1
    """Success when the point is closer than this to the goal."""
    max_speed: float = 0.15
    """Largest move per step (Euclidean); an action further away is approached at this speed."""
    start_range: float = 0.8
    """Starts are uniform in [-start_range, start_range]^D."""
    seed: int = 0
    """Seed of the start positions."""
    num_points: int = 0
    """Np > 0 adds a "point_cloud" (E, To, Np, 5) to the policy group: Np fixed offsets around the point
    (x, y, z; value = flag = 0), to exercise point-cloud policies; 0 leaves it out."""
    extras_log: dict[str, float] = field(default_factory=dict)
    """Constant entries of ``extras["log"]`` (exercises log merging)."""


class PointReachEnv(VecEnv):
    """E vectorised point-reaching episodes with auto-reset, as an rsl-rl ``VecEnv``."""

    def __init__(self, cfg: PointReachCfg | None = None, device: str | torch.device = "cpu"):
        self.cfg = cfg or PointReachCfg()
        c = self.cfg
        if len(c.goal) != c.dim:
            raise ValueError(f"goal must have dim={c.dim} entries, got {c.goal}")
        self.num_envs = c.num_envs
        self.num_actions = c.dim
        self.max_episode_length = c.episode_length
        self.device = torch.device(device)
        self.generator = torch.Generator(device="cpu").manual_seed(c.seed)
        self.goal = torch.tensor(c.goal, dtype=torch.float32, device=self.device)
        self.pos = torch.zeros(c.num_envs, c.dim, device=self.device)
        self.history = torch.zeros(c.num_envs, c.obs_steps, c.dim, device=self.device)
        self.episode_length_buf = torch.zeros(c.num_envs, dtype=torch.long, device=self.device)
        self.reset()

    # ------------------------------------------------------------------ VecEnv API
    def reset(self, env_ids: torch.Tensor | None = None) -> tuple[TensorDict, dict]:
        """New starts for ``env_ids`` (all when None)."""
        ids = torch.arange(self.num_envs, device=self.device) if env_ids is None else env_ids
        if ids.numel() > 0:
            start = (torch.rand(ids.numel(), self.cfg.dim, generator=self.generator) * 2.0 - 1.0) * self.cfg.start_range
            self.pos[ids] = start.to(self.device)
            self.history[ids] = self.pos[ids].unsqueeze(1).expand(-1, self.cfg.obs_steps, -1)
            self.episode_length_buf[ids] = 0
        return self.get_observations(), {}

    def get_observations(self) -> TensorDict:
        critic = torch.cat([self.pos, self.goal.expand(self.num_envs, -1),
                            (self.episode_length_buf.float() / self.max_episode_length).unsqueeze(-1)], dim=-1)
        policy = {"joint_pos": self.history.clone()}
        if self.cfg.num_points > 0:
            policy["point_cloud"] = self._point_cloud()
        return TensorDict({"policy": TensorDict(policy, batch_size=[self.num_envs]), "critic": critic},
                          batch_size=[self.num_envs])

    def _point_cloud(self) -> torch.Tensor:
        """Tensor of shape (E, To, Np, 5): the history's positions (first 3 coordinates) plus fixed offsets."""
        e, to, d = self.history.shape
        xyz = torch.zeros(e, to, 1, 3, device=self.device)
        xyz[..., : min(d, 3)] = self.history[..., : min(d, 3)].unsqueeze(2)
        offsets = torch.linspace(-0.05, 0.05, self.cfg.num_points, device=self.device).view(1, 1, -1, 1)
        cloud = torch.zeros(e, to, self.cfg.num_points, 5, device=self.device)
        cloud[..., :3] = xyz + offsets
        return cloud

    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict]:
        """Move towards the target positions ``actions`` (E, D); returns obs, rewards (E,), dones (E,), extras."""
        if actions.shape != (self.num_envs, self.cfg.dim):
            raise ValueError(f"actions must have shape (E, D) = ({self.num_envs}, {self.cfg.dim}), "
                             f"got {tuple(actions.shape)}")
        delta = actions.to(self.device) - self.pos
        norm = delta.norm(dim=-1, keepdim=True)
        self.pos = self.pos + delta * (self.cfg.max_speed / norm.clamp(min=self.cfg.max_speed))
        self.history = torch.cat([self.history[:, 1:], self.pos.unsqueeze(1)], dim=1)
        self.episode_length_buf += 1
        success = (self.pos - self.goal).norm(dim=-1) < self.cfg.success_radius
        time_outs = (self.episode_length_buf >= self.max_episode_length) & ~success
        dones = success | time_outs
        rewards = success.float()
        self.reset(dones.nonzero().squeeze(-1))
        extras = {"time_outs": time_outs, "log": {k: torch.tensor(v) for k, v in self.cfg.extras_log.items()}}
        return self.get_observations(), rewards, dones.long(), extras

    # ------------------------------------------------------------------ expert
    def expert_chunk(self, targets: torch.Tensor, horizon: int) -> torch.Tensor:
        """The straight-line chunk from each env's position towards ``targets`` (E, D) at full speed.

        Returns:
            Tensor of shape (E, Ta = horizon, D): absolute target positions, one per step.
        """
        delta = targets - self.pos
        dist = delta.norm(dim=-1, keepdim=True)
        direction = delta / dist.clamp(min=1e-9)
        reach = torch.arange(1, horizon + 1, device=self.device, dtype=torch.float32) * self.cfg.max_speed
        along = torch.minimum(reach.view(1, -1, 1), dist.unsqueeze(1))  # (E, Ta, 1)
        return self.pos.unsqueeze(1) + along * direction.unsqueeze(1)


class ReachDemoDataset(Dataset):
    """Behaviour-cloning samples {"obs": {"joint_pos": (To, D)}, "actions": (Ta, D)} with ``stats()``."""

    def __init__(self, joint_pos: torch.Tensor, actions: torch.Tensor):
        if joint_pos.shape[0] != actions.shape[0]:
            raise ValueError(f"joint_pos and actions disagree on the sample count: {joint_pos.shape[0]} vs "
                             f"{actions.shape[0]}")
        self.joint_pos, self.actions = joint_pos.float().cpu(), actions.float().cpu()

    def __len__(self) -> int:
        return self.actions.shape[0]

    def __getitem__(self, index: int) -> dict:
        return {"obs": {"joint_pos": self.joint_pos[index]}, "actions": self.actions[index]}

    def stats(self) -> dict[str, dict[str, np.ndarray]]:
        a = self.actions.reshape(-1, self.actions.shape[-1])
        q = self.joint_pos.reshape(-1, self.joint_pos.shape[-1])
        return {"actions": {"min": a.amin(0).numpy(), "max": a.amax(0).numpy()},
                "joint_pos": {"min": q.amin(0).numpy(), "max": q.amax(0).numpy()}}


def collect_reach_demos(
    cfg: PointReachCfg,
    num_steps: int,
    horizon: int,
    aim_bias: tuple[float, ...],
    aim_noise: float,
    seed: int = 0,
) -> ReachDemoDataset:
    """Roll out the scripted expert (one action per step, re-planned every step) and record its chunks.

    Args:
        cfg: Env cfg (its ``num_envs`` envs run in parallel, through resets).
        num_steps: Env steps to record; the dataset holds num_steps x E samples.
        horizon: Ta of the recorded chunks.
        aim_bias: Offset added to the goal in the expert's aim (a systematic error the clone inherits).
        aim_noise: Std of a per-episode Gaussian error of the aim.
    """
    env = PointReachEnv(cfg)
    gen = torch.Generator().manual_seed(seed)
    bias = torch.tensor(aim_bias, dtype=torch.float32)

    def new_aims(count: int) -> torch.Tensor:
        return env.goal + bias + aim_noise * torch.randn(count, cfg.dim, generator=gen)

    aims = new_aims(env.num_envs)
    joint_pos, actions = [], []
    for _ in range(num_steps):
        chunk = env.expert_chunk(aims, horizon)
        joint_pos.append(env.history.clone())
        actions.append(chunk)
        _, _, dones, _ = env.step(chunk[:, 0])
        done_ids = dones.bool().nonzero().squeeze(-1)
        aims[done_ids] = new_aims(done_ids.numel())
    return ReachDemoDataset(torch.cat(joint_pos), torch.cat(actions))


def toy_policy_cfg(dim: int = 2, obs_steps: int = 2, horizon_steps: int = 4, act_steps: int = 2,
                   denoising_steps: int = 10, num_points: int = 0) -> DiffusionPolicyCfg:
    """A diffusion policy small enough to pre-train and fine-tune on this task in seconds on a CPU
    (joints only, or with a small PointNet when ``num_points`` > 0)."""
    return DiffusionPolicyCfg(
        use_point_cloud=num_points > 0, num_points=max(num_points, 1), joint_dim=dim, action_dim=dim,
        obs_steps=obs_steps, horizon_steps=horizon_steps, act_steps=act_steps,
        point_encoder=PointEncoderCfg(hidden_dims=(16, 32), out_dim=16),
        state_encoder=StateEncoderCfg(hidden_dims=(32, 32)),
        unet=UnetCfg(down_dims=(16, 32), kernel_size=3, diffusion_step_embed_dim=16),
        diffusion=DiffusionCfg(denoising_steps=denoising_steps, ddim_steps=5),
    )


def pretrain_biased_reach_policy(out_dir, task_id: str, num_envs: int, num_steps: int, bc: PretrainCfg):
    """A diffusion policy cloned from demos that aim 0.12 off the goal (poor on purpose); its final checkpoint."""
    torch.manual_seed(0)
    policy_cfg = toy_policy_cfg()
    demos = collect_reach_demos(PointReachCfg(num_envs=num_envs), num_steps=num_steps, horizon=policy_cfg.horizon_steps,
                                aim_bias=(0.12, 0.12), aim_noise=0.08, seed=1)
    result = pretrain(DiffusionProfile(policy=policy_cfg, pretrain=bc), demos, out_dir, progress=False,
                      task_id=task_id)
    return result.final_checkpoint
