"""DPPO inside rsl-rl's stock OnPolicyRunner, built the way ``isaaclab train`` builds it.

Path exercised: ``handle_deprecated_rsl_rl_cfg`` -> ``create_rsl_rl_runner`` (Isaac Lab's glue, which only
accepts OnPolicyRunner / DistillationRunner) -> ``DPPO.construct_algorithm`` -> ``runner.learn`` / ``save`` /
``load``. The env is the pure-torch point-reaching task (same observation layout as the assembly tasks).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
import torch
from tensordict import TensorDict

from isaaclab_rl.rsl_rl import RslRlMLPModelCfg, create_rsl_rl_runner, handle_deprecated_rsl_rl_cfg

from vt_refine.policies.diffusion import CheckpointMismatchError, DiffusionPolicy, save_checkpoint
from vt_refine.rl.dppo import DiffusionActorCfg, DPPOAlgorithmCfg, DPPORunnerCfg
from toy_env import PointReachCfg, PointReachEnv, collect_reach_demos, toy_policy_cfg

torch.set_num_threads(1)

TASK = "toy-reach"


def write_checkpoint(path: Path, task_id: str | None = TASK, seed: int = 0, **cfg_kwargs) -> Path:
    torch.manual_seed(seed)
    cfg = toy_policy_cfg(**cfg_kwargs)
    data = collect_reach_demos(PointReachCfg(num_envs=8, dim=cfg.joint_dim, goal=(0.3, -0.2, 0.0)[:cfg.joint_dim]), 6,
                               cfg.horizon_steps, (0.0,) * cfg.joint_dim, 0.05)
    return save_checkpoint(path, DiffusionPolicy.from_stats(cfg, data.stats()), task_id=task_id)


def make_cfg(checkpoint: Path | str, num_steps_per_env: int = 4, actor: DiffusionActorCfg | None = None,
             **algorithm) -> DPPORunnerCfg:
    defaults = dict(mini_batch_size=40, num_learning_epochs=2, critic_warmup_iterations=0, lr_warmup_iterations=0,
                    actor_learning_rate=1e-3)
    defaults.update(algorithm)
    return DPPORunnerCfg(
        device="cpu", num_steps_per_env=num_steps_per_env, max_iterations=10, save_interval=1,
        experiment_name="dppo_test", pretrained_checkpoint=str(checkpoint), task_id=TASK,
        actor=actor or DiffusionActorCfg(ft_denoising_steps=2),
        critic=RslRlMLPModelCfg(hidden_dims=[32, 32], activation="elu", obs_normalization=True),
        algorithm=DPPOAlgorithmCfg(**defaults),
    )


def env_with_signal(num_envs: int = 10, **kw) -> PointReachEnv:
    """A toy env whose short test rollouts see successes and failures alike (a wide success radius), so that the
    actor gets a reward signal to update on."""
    return PointReachEnv(PointReachCfg(num_envs=num_envs, seed=3, success_radius=0.4, **kw))


def make_runner(cfg: DPPORunnerCfg, env=None, log_dir: Path | None = None):
    cfg = handle_deprecated_rsl_rl_cfg(cfg, importlib.metadata.version("rsl-rl-lib"))
    env = env or PointReachEnv(PointReachCfg(num_envs=10, seed=3))
    return create_rsl_rl_runner(env, cfg, log_dir=str(log_dir) if log_dir else None)


def rollout_and_update(runner) -> dict[str, float]:
    """One iteration exactly as OnPolicyRunner.learn runs it, returning the update's loss dict."""
    env, alg = runner.env, runner.alg
    obs = env.get_observations()
    alg.train_mode()
    with torch.inference_mode():
        for _ in range(runner.cfg["num_steps_per_env"]):
            obs, rewards, dones, extras = env.step(alg.act(obs))
            alg.process_env_step(obs, rewards, dones, extras)
        alg.compute_returns(obs)
    return alg.update()


def clone_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------------------------- runner
def test_isaaclab_runner_hosts_dppo_and_logs_to_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ckpt = write_checkpoint(tmp_path / "final.pt")
    runner = make_runner(make_cfg(ckpt), log_dir=tmp_path / "logs")
    assert type(runner.alg).__name__ == "DPPO"
    assert runner.alg.storage.num_decisions == 2  # 4 env steps / Te = 2
    runner.learn(num_learning_iterations=2)
    assert (tmp_path / "logs" / "model_1.pt").is_file()
    events = EventAccumulator(str(tmp_path / "logs"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    for tag in ("Loss/value", "Loss/surrogate", "Loss/approx_kl", "Loss/clip_fraction/step_0",
                "Loss/clip_fraction/step_1", "Loss/explained_variance", "Loss/pretrained_kl", "Loss/learning_rate",
                "Train/mean_reward"):
        assert tag in tags, f"{tag} not logged; got {sorted(tags)}"


@pytest.mark.parametrize("actor_cfg", [DiffusionActorCfg(ft_denoising_steps=2),
                                       DiffusionActorCfg(sampler="ddim", ft_denoising_steps=3, ddim_eta=1.0)],
                         ids=["ddpm", "ddim"])
def test_frozen_steps_stay_bit_identical_after_an_update(tmp_path, actor_cfg):
    runner = make_runner(make_cfg(write_checkpoint(tmp_path / "final.pt"), actor=actor_cfg), env=env_with_signal())
    actor = runner.alg.actor
    obs = runner.env.get_observations()
    before = actor.act(obs, generator=torch.Generator().manual_seed(5))
    frozen = clone_state(actor.pretrained)
    tuned = clone_state(actor.finetuned)
    losses = rollout_and_update(runner)
    assert losses["gradient_steps"] > 0
    after = actor.act(obs, generator=torch.Generator().manual_seed(5))
    assert same_state(frozen, clone_state(actor.pretrained))
    assert not same_state(tuned, clone_state(actor.finetuned))
    # same noise: the frozen part of the chain is reproduced bit for bit, the fine-tuned part moved
    assert torch.equal(before.chains[:, 0], after.chains[:, 0])
    assert not torch.equal(before.chains[:, -1], after.chains[:, -1])


def test_critic_warmup_leaves_the_actor_untouched(tmp_path):
    runner = make_runner(make_cfg(write_checkpoint(tmp_path / "final.pt"), critic_warmup_iterations=1),
                         env=env_with_signal())
    alg = runner.alg
    tuned, critic = clone_state(alg.actor.finetuned), clone_state(alg.critic)
    losses = rollout_and_update(runner)
    assert "surrogate" not in losses and losses["value"] > 0
    assert same_state(tuned, clone_state(alg.actor.finetuned))
    assert not same_state(critic, clone_state(alg.critic))
    losses = rollout_and_update(runner)  # warm-up over: the actor moves
    assert "surrogate" in losses and "clip_fraction/step_1" in losses
    assert not same_state(tuned, clone_state(alg.actor.finetuned))


def test_a_rollout_without_reward_signal_moves_the_critic_not_the_actor(tmp_path):
    """All rewards equal (no success anywhere): the normalised advantages would be the critic's errors, so the
    actor stays put and says so; the critic still learns."""
    far = PointReachEnv(PointReachCfg(num_envs=10, seed=3, success_radius=1e-6))  # nobody ever succeeds
    runner = make_runner(make_cfg(write_checkpoint(tmp_path / "final.pt")), env=far)
    alg = runner.alg
    tuned, critic = clone_state(alg.actor.finetuned), clone_state(alg.critic)
    losses = rollout_and_update(runner)
    assert losses["actor_skipped_no_signal"] == 1.0 and "surrogate" not in losses
    assert same_state(tuned, clone_state(alg.actor.finetuned))
    assert not same_state(critic, clone_state(alg.critic))
    losses = rollout_and_update(make_runner(make_cfg(write_checkpoint(tmp_path / "b.pt")), env=env_with_signal()))
    assert losses["actor_skipped_no_signal"] == 0.0 and "surrogate" in losses


def test_the_shuffled_advantage_control_permutes_the_same_advantages(tmp_path):
    """The control run's advantages are the same values as the real run's, in an order unrelated to the actions."""
    advantages = {}
    for shuffle in (False, True):
        runner = make_runner(make_cfg(write_checkpoint(tmp_path / f"{shuffle}.pt"), shuffle_advantages=shuffle),
                             env=env_with_signal())
        rollout_and_update(runner)
        advantages[shuffle] = runner.alg.storage.advantages.reshape(-1).clone()
    real, control = advantages[False], advantages[True]
    assert torch.equal(real.sort().values, control.sort().values)
    assert not torch.equal(real, control)


def test_target_kl_stops_the_epochs(tmp_path):
    ckpt = write_checkpoint(tmp_path / "final.pt")
    free = rollout_and_update(make_runner(make_cfg(ckpt, num_learning_epochs=5, target_kl=None), env=env_with_signal()))
    # 10 envs x 2 decisions x 2 steps = 40 pairs = one mini-batch per epoch
    assert free["gradient_steps"] == 5 and free["kl_stop_epoch"] == -1
    torch.manual_seed(0)
    # The first step measures the rollout's own policy, recomputed with other batch shapes: measured KL 2.2e-9
    # (max |log-prob difference| 1.8e-7, float32 rounding; it is not exactly 0 on every CPU). After one step at
    # lr 1e-2 the KL is 0.19. A target of 1e-4 sits ~5 orders above the first and ~3 below the second.
    stopped = rollout_and_update(make_runner(make_cfg(ckpt, num_learning_epochs=5, target_kl=1e-4,
                                                      actor_learning_rate=1e-2), env=env_with_signal()))
    # not stopped before any step; the second step sees the move and stops the epochs
    assert stopped["gradient_steps"] == 2 and stopped["kl_stop_epoch"] == 1
    assert stopped["approx_kl"] > 0


def test_checkpoints_resume_model_optimisers_and_iteration(tmp_path):
    ckpt = write_checkpoint(tmp_path / "final.pt")
    runner = make_runner(make_cfg(ckpt, critic_warmup_iterations=1), log_dir=tmp_path / "logs")
    runner.learn(num_learning_iterations=3)
    saved = tmp_path / "logs" / "model_2.pt"
    resumed = make_runner(make_cfg(ckpt, critic_warmup_iterations=1))
    resumed.load(str(saved))
    assert resumed.current_learning_iteration == 2 and resumed.alg.iteration == 3
    runner.alg._set_learning_rates()  # both now hold the learning rates of the next (4th) update
    assert same_state(clone_state(runner.alg.actor), clone_state(resumed.alg.actor))
    assert same_state(clone_state(runner.alg.critic), clone_state(resumed.alg.critic))
    for name in ("actor_optimizer", "critic_optimizer"):
        a, b = getattr(runner.alg, name).state_dict(), getattr(resumed.alg, name).state_dict()
        assert a["param_groups"] == b["param_groups"]
        assert all(torch.equal(a["state"][i]["exp_avg"], b["state"][i]["exp_avg"]) for i in a["state"])
    assert resumed.alg.learning_rate == pytest.approx(runner.alg.learning_rate)
    assert resumed.alg.learning_rate < 1e-3  # the cosine schedule went on from where it was, not from the start
    # the file holds the fine-tuned copy only; a resume on top of another pre-trained policy is refused
    assert not any(key.startswith("pretrained") for key in torch.load(saved, weights_only=False)["actor_state_dict"])
    other = make_runner(make_cfg(write_checkpoint(tmp_path / "other.pt", seed=1)))
    with pytest.raises(ValueError, match="fine-tunes another pre-trained policy"):
        other.load(str(saved))
    # a checkpoint of another algorithm is refused with a hint
    torch.save({"actor_state_dict": {}, "critic_state_dict": {}, "optimizer_state_dict": {}, "iter": 0, "infos": None},
               tmp_path / "ppo.pt")
    with pytest.raises(ValueError, match="not written by DPPO"):
        resumed.load(str(tmp_path / "ppo.pt"))


# ---------------------------------------------------------------------------------------------- decisions
class ScriptedCriticEnv:
    """E = 2 envs with scripted rewards/dones; policy group joint_pos (E, 2, 2) = step counter, critic (E, 3)."""

    num_envs, num_actions, device, max_episode_length, cfg = 2, 2, "cpu", 100, None

    def __init__(self, final_obs: bool = False):
        self.t = 0
        self.final_obs = final_obs
        self.episode_length_buf = torch.zeros(2, dtype=torch.long)
        self.actions: list[torch.Tensor] = []
        # env 0: success reward at step 1 (terminal); env 1: time-out at step 3
        self.rewards = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0], [0.0, 0.25]])
        self.dones = torch.tensor([[0, 0], [1, 0], [0, 0], [0, 1]])
        self.time_outs = torch.tensor([[0, 0], [0, 0], [0, 0], [0, 1]], dtype=torch.bool)

    def get_observations(self) -> TensorDict:
        q = torch.full((2, 2, 2), float(self.t))
        critic = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]) * (self.t + 1)
        return TensorDict({"policy": TensorDict({"joint_pos": q}, batch_size=[2]), "critic": critic}, batch_size=[2])

    def step(self, actions):
        self.actions.append(actions.clone())
        t = self.t
        self.t += 1
        extras = {"time_outs": self.time_outs[t]}
        if self.final_obs and bool(self.dones[t].any()):
            extras["final_obs"] = {"critic": torch.full((2, 3), 9.0)}
        return self.get_observations(), self.rewards[t], self.dones[t], extras


@pytest.mark.parametrize("final_obs", [False, True])
def test_decisions_merge_steps_hold_ended_envs_and_bootstrap_time_outs(tmp_path, final_obs):
    ckpt = write_checkpoint(tmp_path / "final.pt")
    env = ScriptedCriticEnv(final_obs=final_obs)
    runner = make_runner(make_cfg(ckpt, gamma=0.9, critic_warmup_iterations=5), env=env)
    alg = runner.alg
    obs = env.get_observations()
    values = []
    with torch.inference_mode():
        for _ in range(4):
            values.append(alg.critic(obs).reshape(-1).clone())
            obs, rewards, dones, extras = env.step(alg.act(obs))
            alg.process_env_step(obs, rewards, dones, extras)
        alg.compute_returns(obs)
        final_value = alg.critic(TensorDict({"critic": torch.full((2, 3), 9.0)}, batch_size=[2])).reshape(-1)
    st = alg.storage
    assert st.full and st.step == 2
    # decision 0 = steps 0-1: env 0 succeeded at step 1; decision 1 = steps 2-3: env 0 in a new episode
    # (its 5.0 at step 2 counts), env 1 timed out at step 3 -> + gamma * V (of the decision's obs, or final_obs)
    boot = final_value[1] if final_obs else values[2][1]
    expected = torch.stack([torch.tensor([1.0, 0.0]), torch.stack([torch.tensor(5.0), 0.25 + 0.9 * boot])])
    assert torch.allclose(st.rewards, expected, atol=1e-6)
    assert st.dones.tolist() == [[1.0, 0.0], [0.0, 1.0]] and st.time_outs.tolist() == [[0.0, 0.0], [0.0, 1.0]]
    assert torch.allclose(st.values[:, 0], torch.stack([values[0][0], values[2][0]]))
    # no env ended mid-decision here (env 0 ended on a decision's last step): all 4 actions came from chunks
    chunks = st.chains[:, :, -1]
    unnorm = alg.actor.pretrained.action_normalizer.unnormalize(chunks)
    for step in range(4):
        assert torch.allclose(env.actions[step], unnorm[step // 2, :, step % 2])


def test_an_env_that_ends_mid_decision_holds_its_reset_pose(tmp_path):
    ckpt = write_checkpoint(tmp_path / "final.pt")
    env = ScriptedCriticEnv()
    env.dones = torch.tensor([[1, 0], [0, 0], [0, 0], [0, 1]])  # env 0 ends at step 0, mid-decision
    env.rewards = torch.tensor([[1.0, 0.0], [7.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    runner = make_runner(make_cfg(ckpt, critic_warmup_iterations=5, bootstrap_time_outs=False), env=env)
    rollout_and_update(runner)
    chunk0 = runner.alg.actor.pretrained.action_normalizer.unnormalize(runner.alg.storage.chains[0, :, -1])
    # step 1: env 0 holds its new episode's joint positions (the step counter, 1.0); env 1 keeps executing
    assert env.actions[1][0].tolist() == [1.0, 1.0]
    assert torch.allclose(env.actions[1][1], chunk0[1, 1])
    # the 7.0 env 0 got while holding belongs to no decision
    assert runner.alg.storage.rewards[0].tolist() == [1.0, 0.0]


def test_hold_maps_joint_positions_to_a_limit_normalised_action_space(tmp_path):
    ckpt = write_checkpoint(tmp_path / "final.pt")
    env = ScriptedCriticEnv()
    env.dones = torch.tensor([[1, 0], [0, 0], [0, 0], [0, 1]])
    runner = make_runner(make_cfg(ckpt, critic_warmup_iterations=5, hold_obs_low=[0.0, -3.0],
                                  hold_obs_high=[4.0, 1.0]), env=env)
    rollout_and_update(runner)
    # held joint position 1.0 in [0, 4] -> -0.5 and in [-3, 1] -> +1.0
    assert env.actions[1][0].tolist() == [-0.5, 1.0]
    with pytest.raises(ValueError, match="hold_obs_low and hold_obs_high must both be given with Da = 2"):
        make_runner(make_cfg(ckpt, hold_obs_low=[0.0]), env=ScriptedCriticEnv())


def test_num_steps_per_env_must_be_whole_decisions(tmp_path):
    ckpt = write_checkpoint(tmp_path / "final.pt")
    with pytest.raises(ValueError, match=r"num_steps_per_env \(5 env steps\) must be a multiple of .* Te = 2"):
        make_runner(make_cfg(ckpt, num_steps_per_env=5))


def test_point_cloud_policy_reads_its_keys_from_the_policy_group(tmp_path):
    ckpt = write_checkpoint(tmp_path / "final.pt", num_points=8)
    # the env's clouds have another point count: the PointNet takes any Np, so that is allowed
    runner = make_runner(make_cfg(ckpt), env=env_with_signal(num_envs=6, num_points=12))
    assert set(runner.alg.storage.observations["policy"].keys()) == {"joint_pos", "point_cloud"}
    tuned = clone_state(runner.alg.actor.finetuned.obs_encoder.point_encoder)
    losses = rollout_and_update(runner)
    assert losses["gradient_steps"] > 0
    assert not same_state(tuned, clone_state(runner.alg.actor.finetuned.obs_encoder.point_encoder))
    with pytest.raises(CheckpointMismatchError, match=r"'point_cloud': checkpoint \(2, 8, 5\) vs env absent"):
        make_runner(make_cfg(ckpt))


# ---------------------------------------------------------------------------------------------- bad input
def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no checkpoint was given: set agent.pretrained_checkpoint"):
        make_runner(make_cfg(""))
    with pytest.raises(FileNotFoundError, match="nowhere.pt does not exist"):
        make_runner(make_cfg(tmp_path / "nowhere.pt"))


def test_checkpoint_of_another_task_names_both_tasks(tmp_path):
    ckpt = write_checkpoint(tmp_path / "final.pt", task_id="00081")
    with pytest.raises(CheckpointMismatchError, match="task id '00081' but task id 'toy-reach'"):
        make_runner(make_cfg(ckpt))


def test_checkpoint_with_other_action_size_names_both_sizes(tmp_path):
    ckpt = write_checkpoint(tmp_path / "final.pt", dim=3)
    with pytest.raises(CheckpointMismatchError, match=r"Da = 3 but the env takes 2 actions"):
        make_runner(make_cfg(ckpt))


def test_checkpoint_with_other_observation_shape_names_both_shapes(tmp_path):
    ckpt = write_checkpoint(tmp_path / "final.pt")  # To = 2
    env = PointReachEnv(PointReachCfg(num_envs=4, obs_steps=3))
    with pytest.raises(CheckpointMismatchError, match=r"'joint_pos': checkpoint \(2, 2\) vs env \(3, 2\)"):
        make_runner(make_cfg(ckpt), env=env)


def test_env_without_the_policy_key_is_a_clear_error(tmp_path):
    ckpt = write_checkpoint(tmp_path / "final.pt")

    class Renamed(PointReachEnv):
        def get_observations(self):
            obs = super().get_observations()
            return TensorDict({"policy": TensorDict({"q": obs["policy"]["joint_pos"]}, batch_size=[self.num_envs]),
                               "critic": obs["critic"]}, batch_size=[self.num_envs])

    with pytest.raises(CheckpointMismatchError, match=r"'joint_pos': checkpoint \(2, 2\) vs env absent"):
        make_runner(make_cfg(ckpt), env=Renamed(PointReachCfg(num_envs=4)))


def test_a_frozen_encoder_stores_conditions_instead_of_the_actor_observations(tmp_path):
    runner = make_runner(make_cfg(write_checkpoint(tmp_path / "final.pt"),
                                  actor=DiffusionActorCfg(ft_denoising_steps=2, train_obs_encoder=False)))
    storage = runner.alg.storage
    assert storage.conds is not None and "policy" not in storage.observations.keys()  # the critic's group only
    torch.manual_seed(0)
    losses = rollout_and_update(runner)
    assert losses["gradient_steps"] > 0 and losses["approx_kl"] >= 0.0


def test_a_checkpoint_before_any_actor_update_evaluates_exactly_like_its_source(tmp_path):
    """One sampling rule: evaluation runs the pre-trained policy's deterministic chain for a pre-trained and a
    fine-tuned checkpoint alike, whatever DDIM eta the rollouts explored with."""
    from vt_refine.app.checkpoint import Checkpoint

    ckpt = write_checkpoint(tmp_path / "final.pt")
    actor = DiffusionActorCfg(sampler="ddim", ft_denoising_steps=5, ddim_eta=1.0, min_sampling_std=0.1)
    runner = make_runner(make_cfg(ckpt, actor=actor, critic_warmup_iterations=1), env=env_with_signal(),
                         log_dir=tmp_path / "logs")
    runner.learn(num_learning_iterations=1)  # a critic warm-up update: the actor has not moved
    obs = runner.env.get_observations()
    pretrained, finetuned = Checkpoint.open(ckpt), Checkpoint.open(tmp_path / "logs" / "model_0.pt")
    assert (pretrained.kind, finetuned.kind) == ("pretrained", "finetuned")
    assert finetuned.pretrained_path == ckpt.resolve() and finetuned.task == TASK
    source = pretrained.eval_actor(obs, 2, "cpu", sampler="ddim")
    tuned = finetuned.eval_actor(obs, 2, "cpu")
    a = source.act(obs, deterministic=True, generator=torch.Generator().manual_seed(1)).actions
    b = tuned.act(obs, deterministic=True, generator=torch.Generator().manual_seed(1)).actions
    assert torch.equal(a, b)
