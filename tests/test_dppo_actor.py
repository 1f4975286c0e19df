"""The diffusion policy as a DPPO actor: chains, per-step log-probs, frozen vs fine-tuned steps."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from vt_refine.policies.diffusion import DiffusionPolicy
from vt_refine.rl.dppo import DiffusionActor
from toy_env import PointReachCfg, PointReachEnv, collect_reach_demos, toy_policy_cfg

torch.set_num_threads(1)


def make_policy(seed: int = 0, **cfg_kwargs) -> DiffusionPolicy:
    torch.manual_seed(seed)
    cfg = toy_policy_cfg(**cfg_kwargs)
    data = collect_reach_demos(PointReachCfg(num_envs=8), 6, cfg.horizon_steps, (0.0, 0.0), 0.05)
    return DiffusionPolicy.from_stats(cfg, data.stats())


def toy_obs(num_envs: int = 8, seed: int = 0) -> TensorDict:
    return PointReachEnv(PointReachCfg(num_envs=num_envs, seed=seed)).get_observations()


def test_act_shapes_and_chain_layout():
    actor = DiffusionActor(make_policy(), ft_denoising_steps=3)
    out = actor.act(toy_obs(), generator=torch.Generator().manual_seed(0))
    assert out.actions.shape == (8, 4, 2)
    assert out.chains.shape == (8, 4, 4, 2)  # K + 1 latents
    assert out.log_probs.shape == (8, 3)
    # the chunk is the unnormalised last latent (clamped to +-1 by the policy's final clip)
    assert torch.allclose(out.actions, actor.pretrained.action_normalizer.unnormalize(out.chains[:, -1]))
    assert float(out.chains[:, -1].abs().max()) <= 1.0
    assert actor.ft_timesteps.tolist() == [2, 1, 0]  # the last 3 of the 10 DDPM steps


def test_log_probs_match_torch_normal_on_the_executed_part():
    actor = DiffusionActor(make_policy(), ft_denoising_steps=3, logprob_clip=None)
    obs = toy_obs()
    out = actor.act(obs, generator=torch.Generator().manual_seed(1))
    k = torch.tensor([0, 1, 2, 0, 1, 2, 2, 1])
    rows = torch.arange(8)
    x_prev, x_next = out.chains[rows, k], out.chains[rows, k + 1]
    ev = actor.evaluate_steps(obs, x_prev, x_next, k)
    # reference: the fine-tuned model's Gaussian with the std floored at 0.1, first Te = 2 chunk steps
    model = actor.finetuned
    cond = model.encode_obs(actor.normalized_obs(obs))
    mean, std = model.p_mean_std(x_prev, actor.ft_timesteps[k], cond)
    reference = torch.distributions.Normal(mean, std.clamp(min=0.1)).log_prob(x_next)[:, :2].mean(dim=(1, 2))
    assert torch.allclose(ev.log_prob, reference, atol=1e-5)
    # the rollout's own log-probs are the same numbers (PPO's first ratio is exactly 1)
    assert torch.allclose(ev.log_prob, out.log_probs[rows, k], atol=1e-5)
    # the t = 0 step has posterior std 0: only the floor keeps the density finite
    assert bool(torch.isfinite(ev.log_prob).all())


def test_log_prob_ignores_the_non_executed_steps():
    actor = DiffusionActor(make_policy(), ft_denoising_steps=2)
    obs = toy_obs()
    out = actor.act(obs, generator=torch.Generator().manual_seed(2))
    k = torch.ones(8, dtype=torch.long)
    x_prev, x_next = out.chains[:, 1], out.chains[:, 2]
    base = actor.evaluate_steps(obs, x_prev, x_next, k).log_prob
    tail = x_next.clone()
    tail[:, 2:] += 0.3  # chunk steps Te..Ta are planned but never executed
    assert torch.equal(actor.evaluate_steps(obs, x_prev, tail, k).log_prob, base)
    head = x_next.clone()
    head[:, 1] += 0.05
    assert bool((actor.evaluate_steps(obs, x_prev, head, k).log_prob < base).all())


def test_logprob_clip_bounds_each_element():
    actor = DiffusionActor(make_policy(), ft_denoising_steps=1, logprob_clip=(-5.0, 2.0))
    obs = toy_obs()
    out = actor.act(obs)
    far = out.chains[:, 1] + 10.0  # 100 std away: -5000 nats per element unclipped
    ev = actor.evaluate_steps(obs, out.chains[:, 0], far, torch.zeros(8, dtype=torch.long))
    assert torch.allclose(ev.log_prob, torch.full((8,), -5.0))


def test_sampling_noise_is_clipped_at_three_std():
    # a single fine-tuned DDIM step with eta 0: the sampled latent = mean + 0.05 * clip(noise, 3)
    actor = DiffusionActor(make_policy(), sampler="ddim", ft_denoising_steps=1, min_sampling_std=0.05,
                           randn_clip_value=3.0)
    obs = toy_obs(num_envs=64)
    out = actor.act(obs, generator=torch.Generator().manual_seed(3))
    model = actor.finetuned
    cond = model.encode_obs(actor.normalized_obs(obs))
    mean, _ = model.p_mean_std(out.chains[:, 0], actor.ft_timesteps[0].item(), cond, ddim=True)
    deviation = (out.chains[:, 1] - mean.clamp(-1, 1)).abs()
    assert float(deviation.max()) <= 0.15 + 1e-5
    assert float(deviation.max()) > 0.1  # 64 x 8 draws: some go past 2 std


def test_deterministic_ddim_is_noise_free_and_eta_can_be_overridden():
    actor = DiffusionActor(make_policy(), sampler="ddim", ft_denoising_steps=5)
    obs = toy_obs()
    model = actor.finetuned
    cond = model.encode_obs(actor.normalized_obs(obs))
    for deterministic in (True, False):
        chains = actor.act(obs, deterministic=deterministic).chains
        means = [model.p_mean_std(chains[:, k], actor.ft_timesteps[k].item(), cond, ddim=True)[0] for k in range(5)]
        means[-1] = means[-1].clamp(-1.0, 1.0)  # the policy's final action clip
        same = [torch.allclose(chains[:, k + 1], means[k], atol=1e-6) for k in range(5)]
        # evaluation: every DDIM step lands on its mean; training: the min sampling std adds noise to each
        assert all(same) if deterministic else not any(same)
    noisy = DiffusionActor(make_policy(), sampler="ddim", ft_denoising_steps=5, ddim_eta=1.0)
    assert float(noisy.output_std.max()) > 0.1 > float(actor.output_std.max())


def test_frozen_copy_is_frozen_and_the_fine_tuned_copy_trains():
    actor = DiffusionActor(make_policy(), ft_denoising_steps=2, train_obs_encoder=False)
    assert not any(p.requires_grad for p in actor.pretrained.parameters())
    trainable = actor.trainable_parameters()
    assert trainable and all(p.requires_grad for p in trainable)
    assert not any(p.requires_grad for p in actor.finetuned.obs_encoder.parameters())
    actor.train()
    assert actor.finetuned.training and not actor.pretrained.training


def test_flat_policy_group_is_reshaped_for_a_single_key_policy():
    actor = DiffusionActor(make_policy())
    obs = toy_obs()
    flat = TensorDict({"policy": obs["policy"]["joint_pos"].reshape(8, -1), "critic": obs["critic"]}, batch_size=[8])
    assert torch.equal(actor.raw_policy_obs(flat)["joint_pos"], obs["policy"]["joint_pos"])
    g = torch.Generator()
    from_flat = actor.act(flat, generator=g.manual_seed(0)).actions
    assert torch.equal(from_flat, actor.act(obs, generator=g.manual_seed(0)).actions)
    wrong = TensorDict({"policy": torch.zeros(8, 5)}, batch_size=[8])
    with pytest.raises(ValueError, match=r"expects 'joint_pos' of per-env shape \(2, 2\)"):
        actor.act(wrong)
    with pytest.raises(ValueError, match="lacks 'joint_pos'"):
        actor.act(TensorDict({"policy": TensorDict({"q": torch.zeros(8, 2, 2)}, batch_size=[8])}, batch_size=[8]))


def test_per_step_inference_replans_every_te_steps_and_on_reset():
    actor = DiffusionActor(make_policy(), ft_denoising_steps=2).eval()
    obs = PointReachEnv(PointReachCfg(num_envs=4)).get_observations()
    first = actor(obs)
    chunk = actor._play_chunk.clone()
    assert torch.equal(first, chunk[:, 0])
    actor.reset(torch.tensor([1, 0, 0, 0]))  # env 0's episode ended: it re-plans, the others go on
    second = actor(obs)
    assert torch.equal(second[1:], chunk[1:, 1])
    assert not torch.equal(actor._play_chunk[0], chunk[0]) and torch.equal(second[0], actor._play_chunk[0, 0])
    third = actor(obs)  # envs 1..3 reached Te = 2: new chunks
    assert not torch.equal(actor._play_chunk[1:], chunk[1:]) and torch.equal(third[1:], actor._play_chunk[1:, 0])


def test_bad_actor_arguments():
    policy = make_policy()
    with pytest.raises(ValueError, match=r"ft_denoising_steps must be in \[1, 10\]"):
        DiffusionActor(policy, ft_denoising_steps=11)
    with pytest.raises(ValueError, match=r"ft_denoising_steps must be in \[1, 5\]"):
        DiffusionActor(policy, sampler="ddim", ft_denoising_steps=6)
    with pytest.raises(ValueError, match=r"act_steps must be in \[1, Ta=4\]"):
        DiffusionActor(policy, act_steps=5)
    with pytest.raises(ValueError, match="sampler"):
        DiffusionActor(policy, sampler="euler")


def test_a_frozen_encoder_hands_its_condition_to_the_update():
    """With train_obs_encoder=False both copies encode alike: act() returns the condition, and log-probs computed
    from it equal those from re-encoding the observations; with a trainable encoder nothing is cached."""
    frozen = DiffusionActor(make_policy(), ft_denoising_steps=2, train_obs_encoder=False)
    obs = toy_obs()
    out = frozen.act(obs, generator=torch.Generator().manual_seed(3))
    assert frozen.caches_condition and out.cond is not None and out.cond.shape[0] == 8
    k = torch.tensor([0, 1] * 4)
    rows = torch.arange(8)
    x_prev, x_next = out.chains[rows, k], out.chains[rows, k + 1]
    from_cond = frozen.evaluate_steps(obs, x_prev, x_next, k, with_pretrained=True, cond=out.cond)
    from_obs = frozen.evaluate_steps(obs, x_prev, x_next, k, with_pretrained=True)
    torch.testing.assert_close(from_cond.log_prob, from_obs.log_prob)
    torch.testing.assert_close(from_cond.pretrained_mean, from_obs.pretrained_mean)
    torch.testing.assert_close(from_cond.log_prob, out.log_probs[rows, k], atol=1e-5, rtol=0)
    trainable = DiffusionActor(make_policy(), ft_denoising_steps=2)
    assert trainable.act(obs).cond is None
    with pytest.raises(ValueError, match="encoder is frozen"):
        trainable.evaluate_steps(obs, x_prev, x_next, k, cond=out.cond)
