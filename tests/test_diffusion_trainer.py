"""Pre-training loop: resume replays an uninterrupted run, outputs on disk, mixed datasets, input checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from vt_refine.policies.diffusion import (
    CheckpointMismatchError,
    DiffusionProfile,
    PretrainCfg,
    load_checkpoint,
    merge_stats,
    pretrain,
)
from policy_fixtures import SyntheticChunkDataset, tiny_policy_cfg
from vt_refine.policies.diffusion.trainer import cosine_warmup_factor

torch.set_num_threads(1)

POLICY = tiny_policy_cfg(16, num_points=12)
TRAIN = PretrainCfg(total_steps=12, batch_size=8, lr=1e-3, warmup_steps=3, checkpoint_every=5, log_every=2,
                    seed=3)
PROFILE = DiffusionProfile(policy=POLICY, pretrain=TRAIN)


def dataset(seed: int = 0, n: int = 20) -> SyntheticChunkDataset:
    return SyntheticChunkDataset.from_cfg(POLICY, n, seed=seed)


class Crash(RuntimeError):
    pass


def crash_at(step_to_crash: int, exc: type[BaseException] = Crash):
    def callback(step: int, loss: float) -> None:
        if step == step_to_crash:
            raise exc()
    return callback


def test_resumed_run_matches_uninterrupted_run(tmp_path):
    full = pretrain(PROFILE, dataset(), tmp_path / "full", progress=False)
    assert full.step == 12 and len(full.losses) == 12 and full.resumed_from is None

    with pytest.raises(Crash):
        pretrain(PROFILE, dataset(), tmp_path / "cut", progress=False, callback=crash_at(8))
    assert load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")["step"] == 5
    resumed = pretrain(PROFILE, dataset(), tmp_path / "cut", progress=False)
    assert resumed.resumed_from == 5 and resumed.step == 12 and len(resumed.losses) == 7
    # same batches and diffusion noise after the resume -> same losses and weights
    np.testing.assert_allclose(resumed.losses, full.losses[5:], rtol=1e-5)
    a = load_checkpoint(full.final_checkpoint)
    b = load_checkpoint(resumed.final_checkpoint)
    assert a["step"] == b["step"] == 12
    for key in ("model", "ema_model"):
        for name, value in a[key].items():
            torch.testing.assert_close(b[key][name], value, rtol=1e-5, atol=1e-6, msg=f"{key}.{name}")

    # a finished run is not trained further
    again = pretrain(PROFILE, dataset(), tmp_path / "cut", progress=False)
    assert again.step == 12 and again.losses == [] and again.resumed_from == 12

    # only last (steps 10), the one before it (5) and final are kept; TensorBoard events and the profile are written
    assert sorted(p.name for p in (tmp_path / "full" / "checkpoints").iterdir()) == ["final.pt", "last.pt",
                                                                                     "previous.pt"]
    assert load_checkpoint(tmp_path / "full" / "checkpoints" / "previous.pt")["step"] == 5
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "full" / "tb").iterdir())
    assert (tmp_path / "full" / "profile.yaml").is_file()


def test_ctrl_c_saves_the_current_step(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        pretrain(PROFILE, dataset(), tmp_path, progress=False, callback=crash_at(3, KeyboardInterrupt))
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == 3
    assert pretrain(PROFILE, dataset(), tmp_path, progress=False).resumed_from == 3


def test_resume_refuses_another_policy_config(tmp_path):
    with pytest.raises(Crash):
        pretrain(PROFILE, dataset(), tmp_path, progress=False, callback=crash_at(6))
    other = DiffusionProfile(policy=dataclasses.replace(POLICY, act_steps=2), pretrain=TRAIN)
    with pytest.raises(CheckpointMismatchError, match="act_steps: checkpoint 4 vs current 2"):
        pretrain(other, dataset(), tmp_path, progress=False)


def test_mixed_datasets_and_input_checks(tmp_path):
    first, second = dataset(seed=0, n=6), dataset(seed=1, n=7)
    merged = merge_stats([first.stats(), second.stats()])
    both = torch.cat([first.actions, second.actions]).reshape(-1, 16)
    np.testing.assert_allclose(merged["actions"]["min"], both.amin(0).numpy(), rtol=1e-6)
    np.testing.assert_allclose(merged["actions"]["max"], both.amax(0).numpy(), rtol=1e-6)
    short = DiffusionProfile(policy=POLICY, pretrain=dataclasses.replace(TRAIN, total_steps=2))
    result = pretrain(short, [first, second], tmp_path / "mixed", progress=False)
    saved_max = load_checkpoint(result.final_checkpoint)["normalizers"]["actions"]["data_max"]
    np.testing.assert_allclose(saved_max.numpy(), merged["actions"]["max"], rtol=1e-6)

    wrong = SyntheticChunkDataset(4, num_points=12, horizon_steps=16)  # Ta 16 but the policy predicts 8
    with pytest.raises(ValueError, match=r"dataset actions have shape \(16, 16\), the policy config expects"):
        pretrain(PROFILE, wrong, tmp_path / "wrong", progress=False)
    with pytest.raises(ValueError, match="has no stats\\(\\) method"):
        pretrain(PROFILE, [torch.utils.data.TensorDataset(torch.zeros(3))], tmp_path / "nostats", progress=False)


def test_learning_rate_schedule():
    cfg = PretrainCfg(total_steps=110, lr=1e-3, min_lr=1e-4, warmup_steps=10)
    assert cosine_warmup_factor(0, cfg) == pytest.approx(0.1)
    assert cosine_warmup_factor(9, cfg) == pytest.approx(1.0)
    assert cosine_warmup_factor(10, cfg) == pytest.approx(1.0)
    assert cosine_warmup_factor(60, cfg) == pytest.approx(0.55)  # half-way: (1 + 0.1) / 2
    assert cosine_warmup_factor(110, cfg) == pytest.approx(0.1)


def test_tactile_dropout_zeroes_whole_samples_taxel_values_only():
    from vt_refine.policies.diffusion.trainer import drop_tactile_values

    b, to, nv, nt = 400, 2, 5, 7
    cloud = torch.rand(b, to, nv + nt, 5) + 0.1  # every value > 0
    cloud[..., 4] = 0.0
    cloud[..., nv:, 4] = 1.0  # taxels last, flag 1
    out = drop_tactile_values(cloud, 0.3, torch.Generator().manual_seed(0))
    changed = (out != cloud).any(-1)  # (B, To, Np)
    assert not changed[..., :nv].any()  # visual points untouched
    assert torch.equal(out[..., [0, 1, 2, 4]], cloud[..., [0, 1, 2, 4]])  # taxel positions and flags kept
    dropped = changed.any(-1).any(-1)  # (B,)
    assert torch.equal(changed[dropped][..., nv:], torch.ones_like(changed[dropped][..., nv:]))  # all frames, taxels
    assert (out[dropped][..., nv:, 3] == 0).all() and torch.equal(out[~dropped], cloud[~dropped])
    assert 0.22 < dropped.float().mean() < 0.38  # the share asked for, 400 draws
    again = drop_tactile_values(cloud, 0.3, torch.Generator().manual_seed(0))
    assert torch.equal(again, out)  # deterministic per generator seed
    assert torch.equal(drop_tactile_values(cloud, 0.0, torch.Generator()), cloud)


def test_tactile_dropout_out_of_range_is_refused():
    with pytest.raises(ValueError, match="tactile_dropout"):
        PretrainCfg(tactile_dropout=1.5)
