"""Reading normalisation (sim rule and real-reader rule) and the realism knobs' statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vt_refine.sensors.piezo_tactile import (
    TactileNormalizationCfg,
    TactileRealism,
    TactileRealismCfg,
    TactileRealismError,
    normalize_tactile,
    real_sensor_normalize,
)

torch.set_num_threads(1)

SHAPE = (4, 12, 32)  # pads, rows, cols


# ------------------------------------------------------------------------------------------ normalisation


def test_normalisation_below_tau_uses_fixed_scale_and_above_uses_the_maximum():
    cfg = TactileNormalizationCfg(tau=0.5, s_max_fixed=2.0, per_pad=True)
    force = torch.zeros(2, *SHAPE)
    force[0, 0, 3, 4] = 0.4  # pad 0 of env 0: quiet (max 0.4 < tau)
    force[0, 0, 3, 5] = 0.1
    force[0, 1, 0, 0] = 3.0  # pad 1 of env 0: in contact (max 3.0)
    force[0, 1, 0, 1] = 1.5
    force[1, 2, 5, 5] = 0.5  # env 1 pad 2: exactly tau counts as contact
    out = normalize_tactile(force, cfg)
    assert out[0, 0, 3, 4] == pytest.approx(0.2) and out[0, 0, 3, 5] == pytest.approx(0.05)
    assert out[0, 1, 0, 0] == pytest.approx(1.0) and out[0, 1, 0, 1] == pytest.approx(0.5)
    assert out[1, 2, 5, 5] == pytest.approx(1.0)
    assert torch.all(out[0, 2:] == 0) and torch.isfinite(out).all()  # empty pads stay 0 (no 0 / 0)


def test_normalisation_per_frame_shares_one_maximum_across_pads():
    force = torch.zeros(1, *SHAPE)
    force[0, 0, 0, 0] = 4.0
    force[0, 3, 1, 1] = 1.0
    per_pad = normalize_tactile(force, TactileNormalizationCfg(tau=0.5, s_max_fixed=2.0, per_pad=True))
    per_frame = normalize_tactile(force, TactileNormalizationCfg(tau=0.5, s_max_fixed=2.0, per_pad=False))
    assert per_pad[0, 3, 1, 1] == pytest.approx(1.0)  # its own pad's peak
    assert per_frame[0, 3, 1, 1] == pytest.approx(0.25)  # the frame's peak (pad 0)
    assert per_frame[0, 0, 0, 0] == pytest.approx(1.0)


def test_normalisation_is_continuous_at_tau_by_default():
    cfg = TactileNormalizationCfg()
    below = torch.full((1, 1, 2, 2), cfg.tau * (1 - 1e-6))
    above = torch.full((1, 1, 2, 2), cfg.tau)
    peak_below, peak_above = float(normalize_tactile(below, cfg).max()), float(normalize_tactile(above, cfg).max())
    assert peak_below == pytest.approx(peak_above, rel=1e-5)


def test_real_sensor_normalize_mirrors_the_reader():
    rng = np.random.default_rng(0)
    baseline = rng.integers(100, 200, size=(12, 32)).astype(np.float32)
    frames = np.repeat(baseline[None], 40, axis=0) + rng.integers(-3, 4, size=(40, 12, 32))
    frames[35] = baseline + 12 + 30  # quiet: max(c) = 30 < 60 -> c / 60
    frames[36] = baseline + 12 + 250  # pressed beyond the clip: c = 100 -> c / max = 1
    frames[36, 0, 0] = baseline[0, 0] + 12 + 50
    out = real_sensor_normalize(frames, baseline_frames=30)
    true_baseline = np.median(frames[:30], axis=0)  # numpy's median averages the two middle values
    expected_35 = np.clip(frames[35] - true_baseline - 12, 0, 100) / 60
    np.testing.assert_allclose(out[35].numpy(), expected_35, rtol=1e-6)
    expected_36 = np.clip(frames[36] - true_baseline - 12, 0, 100)
    np.testing.assert_allclose(out[36].numpy(), expected_36 / expected_36.max(), rtol=1e-6)
    assert out.shape == (40, 12, 32) and out[:30].max() <= 3.0 / 60 + 1e-6  # baseline frames stay near 0


# ---------------------------------------------------------------------------------------------- realism


def _realism(num_envs=64, seed=0, **knobs):
    generator = torch.Generator().manual_seed(seed)
    return TactileRealism(TactileRealismCfg(**knobs), num_envs, SHAPE, generator=generator)


def test_realism_is_identity_by_default():
    cfg = TactileRealismCfg()
    assert cfg.is_identity
    force = torch.rand(3, *SHAPE)
    assert torch.equal(TactileRealism(cfg, 3, SHAPE)(force, dt=1 / 120), force)


def test_additive_and_multiplicative_noise_have_the_configured_std():
    force = torch.full((64, *SHAPE), 2.0)
    additive = _realism(additive_noise_std=0.05)(force, dt=0.01) - force
    assert additive.mean().abs() < 2e-3 and additive.std().item() == pytest.approx(0.05, rel=0.02)
    relative = _realism(multiplicative_noise_std=0.1)(force, dt=0.01) / force - 1.0
    assert relative.std().item() == pytest.approx(0.1, rel=0.02)


def test_gain_spread_and_dead_taxels_are_per_env_and_redrawn_on_reset():
    module = _realism(gain_spread_std=0.2, dead_taxel_prob=0.1)
    force = torch.ones(64, *SHAPE)
    out = module(force, dt=0.01)
    dead = out == 0
    assert dead.float().mean().item() == pytest.approx(0.1, abs=0.005)  # 64 * 1536 taxels
    alive_gain = out[~dead]
    assert alive_gain.std().item() == pytest.approx(0.2, rel=0.03)
    assert torch.equal(module(force, dt=0.01), out)  # fixed within an episode
    gain_before, alive_before = module.gain.clone(), module.alive.clone()
    module.reset([3, 7])
    changed = (module.gain != gain_before).flatten(1).any(dim=1) | (module.alive != alive_before).flatten(1).any(dim=1)
    assert changed.nonzero().flatten().tolist() == [3, 7]


def test_quantisation_rounds_to_the_step():
    force = torch.rand(8, *SHAPE) * 3.0
    out = _realism(num_envs=8, quantization_step=0.25)(force, dt=0.01)
    steps = out / 0.25
    assert torch.allclose(steps, steps.round(), atol=1e-5)
    assert (out - force).abs().max() <= 0.125 + 1e-6 and len(out.unique()) > 5


def test_sample_and_hold_at_23_hz_with_per_env_timers():
    num_envs, dt, seconds = 16, 1 / 120, 10.0
    module = _realism(num_envs=num_envs, update_rate_hz=23.0)
    changes = torch.zeros(num_envs)
    previous = None
    for step in range(int(round(seconds / dt))):
        force = torch.full((num_envs, *SHAPE), float(step + 1))  # a new value every call
        out = module(force, dt).clone()
        if previous is not None:
            changes += (out[:, 0, 0, 0] != previous).float()
        previous = out[:, 0, 0, 0]
    assert torch.all((changes - 23.0 * seconds).abs() <= 2), changes  # 230 samples in 10 s
    # random phases: envs do not all sample at the same instants
    assert len(torch.unique(previous)) > 1
    # a reset env samples at the very next call
    module.reset([0])
    out = module(torch.full((num_envs, *SHAPE), -1.0).abs() * 1e6, dt)
    assert out[0, 0, 0, 0] == 1e6


def test_realism_is_deterministic_given_a_generator():
    knobs = {"additive_noise_std": 0.1, "multiplicative_noise_std": 0.1, "gain_spread_std": 0.1,
             "dead_taxel_prob": 0.05, "update_rate_hz": 23.0}
    force = torch.rand(4, *SHAPE)
    first, second, other = (_realism(num_envs=4, seed=s, **knobs) for s in (1, 1, 2))
    for _ in range(5):
        a, b, c = first(force, 0.01), second(force, 0.01), other(force, 0.01)
        assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_realism_rejects_bad_settings():
    with pytest.raises(TactileRealismError, match="dead_taxel_prob"):
        TactileRealism(TactileRealismCfg(dead_taxel_prob=1.5), 1, SHAPE)
    with pytest.raises(TactileRealismError, match="additive_noise_std"):
        TactileRealism(TactileRealismCfg(additive_noise_std=-0.1), 1, SHAPE)
