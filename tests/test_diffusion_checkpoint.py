"""Checkpoints: identical actions after a round trip, clear errors for mismatches and damaged files."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import default_collate

from vt_refine.policies.diffusion import (
    CheckpointCorruptError,
    CheckpointMismatchError,
    DiffusionPolicy,
    DiffusionPolicyCfg,
    PretrainCfg,
    load_checkpoint,
    load_policy,
    save_checkpoint,
)
from policy_fixtures import SyntheticChunkDataset, tiny_policy_cfg

torch.set_num_threads(1)


def small_cfg(**overrides) -> DiffusionPolicyCfg:
    return tiny_policy_cfg(16, **overrides)


def make_policy(cfg: DiffusionPolicyCfg, seed: int = 0) -> tuple[DiffusionPolicy, dict]:
    torch.manual_seed(seed)
    ds = SyntheticChunkDataset.from_cfg(cfg, 4, seed=seed)
    policy = DiffusionPolicy.from_stats(cfg, ds.stats()).eval()
    return policy, default_collate([ds[i] for i in range(4)])["obs"]


def test_round_trip_reproduces_actions_for_same_seed(tmp_path):
    cfg = small_cfg()
    policy, obs = make_policy(cfg)
    ema, _ = make_policy(cfg, seed=1)  # different weights, same normalisers
    ema.load_state_dict({**ema.state_dict(), **{k: v for k, v in policy.state_dict().items() if "normalizer" in k}})
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-4)
    path = save_checkpoint(tmp_path / "ck" / "last.pt", policy, ema_policy=ema, optimizer=optimizer,
                           train_cfg=PretrainCfg(total_steps=10), step=7, task_id="00186")
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary file left behind

    def act(p):
        return p.predict_chunk(obs, sampler="ddim", generator=torch.Generator().manual_seed(3))

    torch.testing.assert_close(act(load_policy(path, use_ema=False)), act(policy), rtol=0, atol=0)
    torch.testing.assert_close(act(load_policy(path, use_ema=True)), act(ema), rtol=0, atol=0)
    assert (act(policy) - act(ema)).abs().max() > 1e-4  # the two weight sets are really different
    payload = load_checkpoint(path, expected_task_id="00186", expected_obs_shapes=cfg.obs_shapes,
                              expected_action_shape=(8, 16))
    assert payload["step"] == 7 and payload["train_cfg"]["total_steps"] == 10
    assert payload["obs_shapes"] == {"point_cloud": [2, 24, 5], "joint_pos": [2, 16]}
    assert set(payload["normalizers"]) == {"actions", "joint_pos"}
    assert payload["optimizer"] is not None and payload["vt_refine_version"]


def test_mismatch_errors_name_both_sides(tmp_path):
    cfg = small_cfg()
    policy, _ = make_policy(cfg)
    path = save_checkpoint(tmp_path / "a.pt", policy, task_id="00186")
    with pytest.raises(CheckpointMismatchError, match="task id '00186' but task id '00081' was requested"):
        load_checkpoint(path, expected_task_id="00081")
    other = dict(cfg.obs_shapes, point_cloud=(2, 2560, 5))
    with pytest.raises(CheckpointMismatchError,
                       match=r"'point_cloud': checkpoint \(2, 24, 5\) vs expected \(2, 2560, 5\)"):
        load_policy(path, expected_obs_shapes=other)
    with pytest.raises(CheckpointMismatchError, match=r"'point_cloud': checkpoint \(2, 24, 5\) vs expected absent"):
        load_checkpoint(path, expected_obs_shapes={"joint_pos": (2, 16)})
    with pytest.raises(CheckpointMismatchError, match=r"\(Ta, Da\) = \(8, 16\) differs from the expected \(16, 16\)"):
        load_checkpoint(path, expected_action_shape=(16, 16))


def test_damaged_files_give_clear_errors(tmp_path):
    policy, _ = make_policy(small_cfg())
    path = save_checkpoint(tmp_path / "good.pt", policy)
    data = path.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointCorruptError, match=r"checkpoint .*truncated\.pt is corrupt or incomplete"):
        load_policy(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointCorruptError, match="corrupt or incomplete"):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {}}, foreign)
    with pytest.raises(CheckpointCorruptError, match=r"missing entries \['format'"):
        load_checkpoint(foreign)
    with pytest.raises(FileNotFoundError, match="missing.pt does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
