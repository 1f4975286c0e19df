"""The DAgger round's executor: per decision and env, the expert or the policy's chunk runs; the label is the
expert's either way (``vt_refine.app.collect.PolicyExecutor``)."""

from __future__ import annotations

import pytest
import torch

from vt_refine.app.collect import PolicyExecutor


class _ChunkActor:
    """Fake actor: chunk k of each call holds value 100 * call + k in every dim; counts its calls."""

    act_steps = 3

    def __init__(self):
        self.calls = 0

    def act(self, obs, deterministic=True, generator=None):
        num_envs = obs["policy"]["joint_pos"].shape[0]
        steps = torch.arange(8, dtype=torch.float32)[None, :, None]
        chunk = (100.0 * self.calls + steps).expand(num_envs, 8, 2).clone()
        self.calls += 1
        return type("Out", (), {"actions": chunk})()


def _obs(num_envs):
    return {"policy": {"joint_pos": torch.zeros(num_envs, 2, 2)}, "critic": torch.zeros(num_envs, 4)}


def _run(beta, steps, num_envs=4, seed=0):
    actor = _ChunkActor()
    executor = PolicyExecutor(actor, beta, torch.Generator().manual_seed(seed))
    label = torch.full((num_envs, 2), -1.0)
    return torch.stack([executor(_obs(num_envs), label) for _ in range(steps)], dim=1), actor  # (E, T, Da)


def test_policy_only_runs_each_chunk_for_te_steps_then_asks_again():
    executed, actor = _run(beta=0.0, steps=7)
    assert actor.calls == 3  # decisions at steps 0, 3, 6
    assert executed[0, :, 0].tolist() == [0.0, 1.0, 2.0, 100.0, 101.0, 102.0, 200.0]


def test_expert_only_is_the_plain_expert_and_never_asks_the_policy():
    executed, actor = _run(beta=1.0, steps=7)
    assert actor.calls == 0
    assert bool((executed == -1.0).all())


def test_the_mixture_chooses_per_env_and_decision_and_is_seeded():
    executed, _ = _run(beta=0.5, steps=30, num_envs=16)
    per_decision = executed[:, ::3, 0]  # (E, decisions): -1 where the expert ran
    expert_share = float((per_decision == -1.0).float().mean())
    assert 0.3 < expert_share < 0.7
    assert bool(((executed[:, 0:3] == -1.0).all(dim=(1, 2)) | (executed[:, 0:3] >= 0.0).all(dim=(1, 2))).all())
    again, _ = _run(beta=0.5, steps=30, num_envs=16)
    assert torch.equal(executed, again)
    other, _ = _run(beta=0.5, steps=30, num_envs=16, seed=1)
    assert not torch.equal(executed, other)


def test_begin_starts_a_new_decision():
    actor = _ChunkActor()
    executor = PolicyExecutor(actor, 0.0, torch.Generator().manual_seed(0))
    label = torch.zeros(2, 2)
    executor(_obs(2), label)
    executor.begin()
    assert float(executor(_obs(2), label)[0, 0]) == 100.0  # a fresh chunk, not step 1 of the old one


def test_beta_outside_0_1_is_refused():
    with pytest.raises(ValueError, match=r"beta must lie in \[0, 1\]"):
        PolicyExecutor(_ChunkActor(), 1.5, torch.Generator())
