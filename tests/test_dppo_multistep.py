"""Te env steps -> one decision: reward sums, dones, time-outs, hold actions after an auto-reset."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from vt_refine.rl.dppo import DecisionAccumulator, MultiStepVecEnv, merge_logs

torch.set_num_threads(1)


class ScriptedEnv:
    """rsl-rl-style env replaying scripted rewards/dones/time-outs per step and recording the actions it got."""

    def __init__(self, rewards, dones, time_outs, num_actions: int = 2):
        self.rewards = torch.tensor(rewards, dtype=torch.float32)  # (steps, E)
        self.dones = torch.tensor(dones)
        self.time_outs = torch.tensor(time_outs, dtype=torch.bool)
        self.num_envs = self.rewards.shape[1]
        self.num_actions = num_actions
        self.device = "cpu"
        self.max_episode_length = 100
        self.t = 0
        self.actions: list[torch.Tensor] = []

    def get_observations(self) -> TensorDict:
        # the "joint position" is the step counter, so a hold action reveals when it was read
        q = torch.full((self.num_envs, 2, self.num_actions), float(self.t))
        return TensorDict({"policy": TensorDict({"joint_pos": q}, batch_size=[self.num_envs])},
                          batch_size=[self.num_envs])

    def step(self, actions):
        self.actions.append(actions.clone())
        t = self.t
        self.t += 1
        extras = {"time_outs": self.time_outs[t], "log": {"Episode_Reward/x": torch.tensor(float(t))}}
        return self.get_observations(), self.rewards[t], self.dones[t].long(), extras


def test_accumulator_sums_discounts_and_stops_at_the_episode_end():
    acc = DecisionAccumulator(num_envs=3, act_steps=3, reward_discount=0.5)
    acc.begin()
    acc.add(torch.tensor([1.0, 1.0, 0.0]), torch.tensor([0, 1, 0]), torch.tensor([0, 0, 0]))
    acc.add(torch.tensor([1.0, 5.0, 0.0]), torch.tensor([0, 0, 1]), torch.tensor([0, 0, 1]))
    assert acc.active.tolist() == [True, False, False] and not acc.complete
    acc.add(torch.tensor([1.0, 7.0, 9.0]), torch.tensor([0, 1, 1]), torch.tensor([0, 1, 1]))
    assert acc.complete
    # env 0: 1 + .5 + .25; env 1: ended at step 0, later rewards belong to the next episode; env 2: nothing
    assert torch.allclose(acc.reward, torch.tensor([1.75, 1.0, 0.0]))
    assert acc.done.tolist() == [False, True, True]
    assert acc.time_out.tolist() == [False, False, True]  # env 1's later time-out is not its decision's
    assert acc.lost_dones == 2  # envs 1 and 2 ended again during padding
    with pytest.raises(RuntimeError, match="call begin"):
        acc.add(torch.zeros(3), torch.zeros(3), None)
    acc.begin()
    assert acc.active.all() and acc.reward.abs().sum() == 0 and acc.step == 0


def test_select_actions_holds_the_envs_that_ended():
    acc = DecisionAccumulator(num_envs=2, act_steps=2)
    acc.begin()
    chunk_actions = torch.ones(2, 3)
    calls = []
    assert torch.equal(acc.select_actions(chunk_actions, lambda: calls.append(1)), chunk_actions)
    assert not calls  # nobody is holding: the hold is not even computed
    acc.add(torch.zeros(2), torch.tensor([1, 0]), None)
    out = acc.select_actions(chunk_actions, lambda: torch.full((2, 3), -4.0))
    assert out[0].tolist() == [-4.0] * 3 and out[1].tolist() == [1.0] * 3


def test_multistep_env_executes_te_actions_and_never_the_rest_of_an_ended_chunk():
    # E = 2, Te = 3: env 0 ends at step 1 (terminal), env 1 times out at step 2
    env = ScriptedEnv(rewards=[[0.0, 0.0], [1.0, 0.5], [3.0, 0.5]], dones=[[0, 0], [1, 0], [0, 1]],
                      time_outs=[[0, 0], [0, 0], [0, 1]])
    multi = MultiStepVecEnv(env, act_steps=3, hold_action_fn=lambda obs: obs["policy"]["joint_pos"][:, -1])
    chunks = torch.arange(2 * 4 * 2, dtype=torch.float32).view(2, 4, 2) + 100.0  # Ta = 4 > Te
    obs, rewards, dones, extras = multi.step(chunks)
    assert len(env.actions) == 3  # Te steps, the 4th planned action is not executed
    assert torch.equal(env.actions[0], chunks[:, 0]) and torch.equal(env.actions[1], chunks[:, 1])
    # step 2: env 0 ended at step 1 -> holds the position observed after that step (t = 2); env 1 keeps its chunk
    assert env.actions[2][0].tolist() == [2.0, 2.0] and torch.equal(env.actions[2][1], chunks[1, 2])
    assert rewards.tolist() == [1.0, 1.0]  # env 0's 3.0 came after its episode ended
    assert dones.tolist() == [True, True]
    assert extras["time_outs"].tolist() == [False, True]
    assert extras["log"]["Episode_Reward/x"].tolist() == [0.0, 1.0, 2.0]
    assert obs["policy"]["joint_pos"][0, -1, 0].item() == 3.0  # the last step's observation


def test_multistep_env_rejects_bad_chunks():
    env = ScriptedEnv(rewards=[[0.0]], dones=[[0]], time_outs=[[0]])
    multi = MultiStepVecEnv(env, act_steps=2)
    with pytest.raises(ValueError, match=r"chunks must have shape \(E=1, Ta>=2, Da=2\)"):
        multi.step(torch.zeros(1, 1, 2))


def test_merge_logs_keeps_every_entry():
    merged = merge_logs([{"a": 1.0, "b": torch.tensor([1.0, 2.0])}, {"a": torch.tensor(3.0)}])
    assert merged["a"].tolist() == [1.0, 3.0] and merged["b"].tolist() == [1.0, 2.0]
