"""DPPO's PPO pieces on tiny batches worked out by hand (vt_refine.rl.dppo.loss)."""

from __future__ import annotations

import math

import pytest
import torch

from vt_refine.rl.dppo import loss

torch.set_num_threads(1)


def test_gae_with_a_terminal_and_a_time_out():
    """Two envs, three decisions, gamma 0.9, lambda 0.5.

    env 0: rewards 0, 1, 0 with a terminal at decision 1 (success), so decision 2 starts a new episode.
    env 1: rewards 0, 0, 0 and a time-out at decision 0, bootstrapped with its own value 0.4.
    """
    gamma, lam = 0.9, 0.5
    rewards = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    values = torch.tensor([[0.5, 0.4], [0.8, 0.2], [0.3, 0.1]])
    dones = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    time_outs = torch.tensor([[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    last_values = torch.tensor([0.6, 0.7])

    boot = loss.bootstrap_time_outs(rewards, time_outs, values, gamma)
    assert boot[0, 1].item() == pytest.approx(0.9 * 0.4)  # only the cut decision gets gamma * V
    assert torch.equal(boot[:, 0], rewards[:, 0]) and torch.equal(boot[1:, 1], rewards[1:, 1])

    adv, ret = loss.generalized_advantages(boot, values, dones, last_values, gamma, lam)
    # env 0, backwards: n=2: delta = 0 + .9*.6 - .3 = .24, A = .24
    #                   n=1 (terminal): delta = 1 - .8 = .2, A = .2 (nothing flows back across the terminal)
    #                   n=0: delta = 0 + .9*.8 - .5 = .22, A = .22 + .9*.5*.2 = .31
    # env 1: n=2: delta = .9*.7 - .1 = .53, A = .53
    #        n=1: delta = .9*.1 - .2 = -.11, A = -.11 + .45*.53 = .1285
    #        n=0 (time-out, done): delta = .36 - .4 = -.04, A = -.04 (the bootstrap replaced V(next))
    expected = torch.tensor([[0.31, -0.04], [0.2, 0.1285], [0.24, 0.53]])
    assert torch.allclose(adv, expected, atol=1e-6)
    assert torch.allclose(ret, expected + values, atol=1e-6)


def test_gae_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="GAE needs"):
        loss.generalized_advantages(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3), 0.9, 0.9)


def test_normalize_advantages():
    out = loss.normalize_advantages(torch.tensor([1.0, 2.0, 3.0, 6.0]))
    assert out.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert out.std().item() == pytest.approx(1.0, abs=1e-5)
    assert torch.equal(loss.normalize_advantages(torch.tensor([5.0])), torch.tensor([0.0]))


def test_denoising_discount_gives_the_final_step_the_full_advantage():
    k = torch.tensor([0, 1, 2, 2, 0])
    assert torch.allclose(loss.denoising_discount(k, 3, 0.9), torch.tensor([0.81, 0.9, 1.0, 1.0, 0.81]))


def test_clip_schedule_grows_from_base_to_full_clip():
    clip = loss.denoising_clip_schedule(5, clip=0.01, base=1e-3, rate=3.0)
    growth = [(math.exp(3.0 * k / 4) - 1.0) / (math.exp(3.0) - 1.0) for k in range(5)]
    expected = torch.tensor([1e-3 + 9e-3 * g for g in growth])
    assert torch.allclose(clip, expected, rtol=1e-6)
    assert clip[0].item() == pytest.approx(1e-3) and clip[-1].item() == pytest.approx(1e-2)
    assert clip[2].item() == pytest.approx(0.0026418, abs=1e-7)  # hand value: 1e-3 + 9e-3 (e^1.5 - 1) / (e^3 - 1)
    assert bool((clip[1:] > clip[:-1]).all())
    assert torch.allclose(loss.denoising_clip_schedule(3, 0.2, 0.1, 0.0), torch.tensor([0.1, 0.15, 0.2]))
    assert torch.equal(loss.denoising_clip_schedule(1, 0.2, 0.1, 3.0), torch.tensor([0.2]))


def test_clipped_surrogate_by_hand():
    old = torch.tensor([-1.0, 0.5, 0.0])
    new = old + torch.log(torch.tensor([1.5, 0.5, 1.001]))
    new.requires_grad_(True)
    adv = torch.tensor([1.0, -1.0, 2.0])
    clip = torch.tensor([0.2, 0.2, 0.01])
    out = loss.clipped_surrogate(new, old, adv, clip)
    # sample 0: r = 1.5, A = 1: max(-1.5, -1.2) = -1.2 (clipped: no incentive to push r further)
    # sample 1: r = 0.5, A = -1: max(0.5, 0.8) = 0.8 (clipped)
    # sample 2: r = 1.001 inside [0.99, 1.01]: -2.002
    assert out.loss.item() == pytest.approx((-1.2 + 0.8 - 2.002) / 3, rel=1e-5)
    assert torch.allclose(out.ratio, torch.tensor([1.5, 0.5, 1.001]))
    assert out.clipped.tolist() == [True, True, False]
    kl = torch.tensor([0.5 - math.log(1.5), -0.5 - math.log(0.5), 0.001 - math.log(1.001)]).mean()
    assert out.approx_kl.item() == pytest.approx(kl.item(), rel=1e-4)
    out.loss.backward()
    # clipped samples give no gradient; the free one gives -A r / B
    assert new.grad[0].item() == 0.0 and new.grad[1].item() == 0.0
    assert new.grad[2].item() == pytest.approx(-2.0 * 1.001 / 3, rel=1e-5)


def test_value_loss_plain_and_clipped():
    values = torch.tensor([1.0, 0.0])
    returns = torch.tensor([0.0, 0.0])
    old = torch.tensor([0.5, 0.0])
    assert loss.value_loss(values, returns, old).item() == pytest.approx(0.25)  # 0.5 * mean(1, 0)
    # clipped at 0.2 around 0.5: 0.7 -> (0.7)^2 = 0.49 < 1, the pessimistic max keeps 1
    assert loss.value_loss(values, returns, old, clip=0.2).item() == pytest.approx(0.25)
    values = torch.tensor([0.0, 0.0])
    returns = torch.tensor([1.0, 0.0])
    # the value moved 0.5 away from the old 0.5 towards 0; clipped at 0.2 it is 0.3 -> (0.7)^2 = 0.49 < 1
    assert loss.value_loss(values, returns, old, clip=0.2).item() == pytest.approx(0.25)
    values = torch.tensor([1.0, 0.0])
    returns = torch.tensor([1.0, 0.0])
    # unclipped error 0, clipped value 0.7 -> error 0.09: the max is 0.09 -> 0.5 * mean(0.09, 0)
    assert loss.value_loss(values, returns, old, clip=0.2).item() == pytest.approx(0.0225)


def test_pretrained_kl_is_the_gaussian_kl():
    torch.manual_seed(0)
    mean, mean0 = torch.randn(3, 4, 2), torch.randn(3, 4, 2)
    std = torch.rand(3, 4, 2) + 0.1
    reference = torch.distributions.kl_divergence(torch.distributions.Normal(mean, std),
                                                  torch.distributions.Normal(mean0, std)).mean()
    assert loss.pretrained_kl(mean, mean0, std).item() == pytest.approx(reference.item(), rel=1e-5)
    assert loss.pretrained_kl(mean, mean, std).item() == 0.0


def test_explained_variance():
    returns = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert loss.explained_variance(returns, returns) == pytest.approx(1.0)
    assert loss.explained_variance(torch.full((4,), 2.5), returns) == pytest.approx(0.0)
    assert math.isnan(loss.explained_variance(returns, torch.ones(4)))
