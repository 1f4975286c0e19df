"""Chunks predicted relative to the last observed joints (``policy.relative_actions``): the map, its statistics,
and the same env actions from the BC policy and from the DPPO actor."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from vt_refine.assets.aloha import ALOHA_JOINT_NAMES, joint_limits, joint_to_action_map
from vt_refine.policies.diffusion import ConfigError, DiffusionPolicy, DiffusionPolicyCfg
from vt_refine.policies.diffusion.trainer import relative_action_stats
from vt_refine.rl.dppo import DiffusionActor
from toy_env import PointReachCfg, PointReachEnv, collect_reach_demos, toy_policy_cfg

torch.set_num_threads(1)

SCALE, OFFSET = (2.0, 0.5), (-1.0, 0.25)  # a toy joint -> action map, not the identity


def relative_cfg():
    return dataclasses.replace(toy_policy_cfg(), relative_actions=True, joint_to_action=(SCALE, OFFSET))


def test_aloha_map_sends_each_joint_limit_to_the_action_bounds():
    scale, offset = (np.array(row) for row in joint_to_action_map())
    limits = joint_limits()
    lo = np.array([limits[n][0] for n in ALOHA_JOINT_NAMES])
    hi = np.array([limits[n][1] for n in ALOHA_JOINT_NAMES])
    assert np.allclose(scale * lo + offset, -1.0) and np.allclose(scale * hi + offset, 1.0)


def test_stats_are_those_of_the_chunks_minus_the_held_joints():
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(20):
        q = torch.tensor(rng.uniform(-1, 1, size=(2, 2)), dtype=torch.float32)  # (To, Dq)
        hold = torch.tensor(SCALE) * q[-1] + torch.tensor(OFFSET)
        delta = torch.tensor(rng.uniform(-0.1, 0.3, size=(4, 2)), dtype=torch.float32)  # (Ta, Da)
        samples.append({"obs": {"joint_pos": q}, "actions": hold + delta, "delta": delta})
    stats = relative_action_stats(samples, relative_cfg())
    deltas = torch.stack([s["delta"] for s in samples]).reshape(-1, 2)
    assert np.allclose(stats["min"], deltas.amin(0).numpy(), atol=1e-6)
    assert np.allclose(stats["max"], deltas.amax(0).numpy(), atol=1e-6)


STATS = {"actions": {"min": np.full(2, -0.2), "max": np.full(2, 0.3)},
         "joint_pos": {"min": np.full(2, -1.0), "max": np.full(2, 1.0)}}


def test_decoded_chunks_move_with_the_joints_and_round_trip():
    policy = DiffusionPolicy.from_stats(relative_cfg(), STATS)
    obs = {"joint_pos": torch.rand(5, 2, 2)}
    shifted = {"joint_pos": obs["joint_pos"] + torch.tensor([0.1, -0.2])}
    x = torch.rand(5, 4, 2) * 2 - 1
    moved = policy.decode_actions(x, shifted) - policy.decode_actions(x, obs)
    assert torch.allclose(moved, torch.tensor([2.0 * 0.1, 0.5 * -0.2]).expand_as(moved), atol=1e-6)
    assert torch.allclose(policy.encode_actions(policy.decode_actions(x, obs), obs), x, atol=1e-5)
    absolute = DiffusionPolicy.from_stats(toy_policy_cfg(), STATS)
    assert torch.equal(absolute.decode_actions(x, shifted), absolute.decode_actions(x, obs))


def test_dppo_actor_executes_what_the_policy_predicts():
    torch.manual_seed(0)
    cfg = relative_cfg()
    data = collect_reach_demos(PointReachCfg(num_envs=8), 6, cfg.horizon_steps, (0.0, 0.0), 0.05)
    stats = {**data.stats(), "actions": relative_action_stats(data, cfg)}
    policy = DiffusionPolicy.from_stats(cfg, stats)
    actor = DiffusionActor(policy, sampler="ddim", ft_denoising_steps=5)
    obs = PointReachEnv(PointReachCfg(num_envs=8, seed=0)).get_observations()
    out = actor.act(obs, deterministic=True, generator=torch.Generator().manual_seed(1))
    raw = actor.raw_policy_obs(obs)
    assert torch.allclose(out.actions, policy.decode_actions(out.chains[:, -1], raw), atol=1e-6)
    expected = policy.predict_chunk(raw, sampler="ddim", deterministic=True, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(out.actions, expected, atol=1e-5)


def test_relative_actions_need_the_map_and_one_action_per_joint():
    with pytest.raises(ConfigError, match="one action per joint"):
        DiffusionPolicyCfg(relative_actions=True, joint_dim=16, action_dim=14)
    with pytest.raises(ValueError, match="joint_to_action"):
        DiffusionPolicy(dataclasses.replace(toy_policy_cfg(), relative_actions=True))
