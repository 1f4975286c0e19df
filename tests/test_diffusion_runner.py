"""ChunkedPolicyRunner: one prediction per Te steps, actions in chunk order, per-env history and resets."""

from __future__ import annotations

import pytest
import torch

from vt_refine.policies.diffusion import (
    ChunkedPolicyRunner,
    DiffusionPolicy,
    DiffusionPolicyCfg,
)
from policy_fixtures import SyntheticChunkDataset, tiny_policy_cfg

torch.set_num_threads(1)

CFG = tiny_policy_cfg(8, num_points=6, joint_dim=3, action_dim=3)
NUM_ENVS = 3


class RecordingPolicy:
    """Chunk k of a plan = (newest joint value of the env) + k / 100, so actions reveal when they were planned."""

    def __init__(self, cfg: DiffusionPolicyCfg):
        self.cfg = cfg
        self.calls: list[dict[str, torch.Tensor]] = []

    def predict_chunk(self, obs, sampler=None, generator=None, deterministic=False):
        self.calls.append({k: v.clone() for k, v in obs.items()})
        newest = obs["joint_pos"][:, -1, :1]  # (B, 1)
        k = torch.arange(self.cfg.horizon_steps, dtype=torch.float32).view(1, -1, 1) / 100
        return (newest.unsqueeze(1) + k).expand(-1, -1, self.cfg.action_dim).clone()


def step_obs(step: int) -> dict[str, torch.Tensor]:
    """Env e at step s observes joints 100 e + s and a cloud filled with the same number."""
    value = 100.0 * torch.arange(NUM_ENVS, dtype=torch.float32) + step
    return {"joint_pos": value.view(-1, 1).expand(-1, CFG.joint_dim).clone(),
            "point_cloud": value.view(-1, 1, 1).expand(-1, CFG.num_points, CFG.point_channels).clone()}


def test_runner_plans_every_te_steps_and_returns_chunk_in_order():
    policy = RecordingPolicy(CFG)
    runner = ChunkedPolicyRunner(policy, NUM_ENVS)
    actions = torch.stack([runner.act(step_obs(s)) for s in range(12)])  # (12, E, Da)
    assert len(policy.calls) == 3 and runner.num_planned_chunks == 3 * NUM_ENVS
    env_base = 100.0 * torch.arange(NUM_ENVS)
    for s in range(12):
        plan_step = 4 * (s // 4)
        want = env_base + plan_step + (s - plan_step) / 100
        torch.testing.assert_close(actions[s, :, 0], want)
    # first plan: history filled with the first observation; later ones: the last To = 2 steps
    torch.testing.assert_close(policy.calls[0]["joint_pos"][:, :, 0], env_base.view(-1, 1).expand(-1, 2))
    torch.testing.assert_close(policy.calls[1]["joint_pos"][:, :, 0], torch.stack([env_base + 3, env_base + 4], 1))
    torch.testing.assert_close(policy.calls[1]["point_cloud"][:, :, 0, 0], torch.stack([env_base + 3, env_base + 4], 1))
    assert policy.calls[1]["point_cloud"].shape == (NUM_ENVS, 2, CFG.num_points, CFG.point_channels)


def test_reset_mid_chunk_replans_only_that_env_with_fresh_history():
    policy = RecordingPolicy(CFG)
    runner = ChunkedPolicyRunner(policy, NUM_ENVS)
    actions = {}
    for s in range(12):
        if s == 6:
            runner.reset([1])
        actions[s] = runner.act(step_obs(s))[:, 0]
    # plans: step 0 (all), 4 (all), 6 (env 1 alone), 8 (envs 0 and 2), 10 (env 1)
    sizes = [c["joint_pos"].shape[0] for c in policy.calls]
    assert sizes == [3, 3, 1, 2, 1]
    torch.testing.assert_close(policy.calls[2]["joint_pos"][:, :, 0], torch.tensor([[106.0, 106.0]]))
    torch.testing.assert_close(policy.calls[3]["joint_pos"][:, :, 0], torch.tensor([[7.0, 8.0], [207.0, 208.0]]))
    torch.testing.assert_close(policy.calls[4]["joint_pos"][:, :, 0], torch.tensor([[109.0, 110.0]]))
    torch.testing.assert_close(actions[6], torch.tensor([4.02, 106.00, 204.02]))  # others keep their chunk
    torch.testing.assert_close(actions[7], torch.tensor([4.03, 106.01, 204.03]))
    torch.testing.assert_close(actions[9], torch.tensor([8.01, 106.03, 208.01]))
    runner.reset()
    runner.act(step_obs(20))
    assert policy.calls[-1]["joint_pos"].shape[0] == NUM_ENVS
    torch.testing.assert_close(policy.calls[-1]["joint_pos"][:, 0], policy.calls[-1]["joint_pos"][:, 1])
    with pytest.raises(ValueError, match=r"env_ids must lie in \[0, 3\)"):
        runner.reset([3])
    with pytest.raises(ValueError, match="step observation 'point_cloud' is missing"):
        runner.act({"joint_pos": step_obs(0)["joint_pos"]})


def test_runner_drives_a_real_policy():
    torch.manual_seed(0)
    ds = SyntheticChunkDataset.from_cfg(CFG, 16)
    policy = DiffusionPolicy.from_stats(CFG, ds.stats()).eval()
    runner = ChunkedPolicyRunner(policy, NUM_ENVS, sampler="ddim", generator=torch.Generator().manual_seed(0))
    stats = ds.stats()["actions"]
    for s in range(5):
        obs = {"joint_pos": ds.joint_pos[:NUM_ENVS, -1], "point_cloud": ds.point_cloud[:NUM_ENVS, -1]}
        action = runner.act(obs)
        assert action.shape == (NUM_ENVS, CFG.action_dim)
        # final clamp at +-1 in normalised units keeps actions inside the demo range
        assert bool((action >= torch.as_tensor(stats["min"]) - 1e-5).all())
        assert bool((action <= torch.as_tensor(stats["max"]) + 1e-5).all())
    assert runner.num_predict_calls == 2
