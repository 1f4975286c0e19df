"""DemoChunkDataset: windows padded at episode starts and ends with exact values, lengths across files,
key renaming, statistics in the trainer's format, shape checks against the policy config."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vt_refine.data.demo_dataset import DemoChunkDataset
from vt_refine.data.demo_writer import DemoWriter
from vt_refine.policies.diffusion import DiffusionPolicyCfg, merge_stats
from vt_refine.policies.diffusion.policy import stats_to_normalizers
from vt_refine.utils.errors import UserError

TASK = "VT-Refine-Test-v0"
NP, C = 4, 5
EXPECTED = {"actions": ((16,), "float32"), "obs/joint_pos": ((16,), "float32"),
            "obs/point_cloud": ((NP, C), "float32")}


def code(file: int, episode: int, step: int) -> float:
    """A value that says where it came from: file f, episode e, step t."""
    return 1000.0 * file + 100.0 * episode + step


def episode_arrays(file: int, episode: int, length: int) -> dict:
    steps = np.array([code(file, episode, t) for t in range(length)], dtype=np.float32)
    joint = steps[:, None] + np.arange(16, dtype=np.float32) * 0.01  # dim d adds 0.01 d
    return {
        "obs": {"joint_pos": joint,
                "point_cloud": np.broadcast_to(steps[:, None, None], (length, NP, C)).astype(np.float32)},
        "actions": -joint,  # action of step t: -(code + 0.01 d)
    }


def make_file(path, file: int, lengths, successes=None) -> None:
    with DemoWriter(path, TASK, {}, EXPECTED) as w:
        for e, n in enumerate(lengths):
            ep = episode_arrays(file, e, n)
            w.append_episode(ep["obs"], ep["actions"], success=True if successes is None else successes[e], seed=e)


@pytest.fixture
def two_files(tmp_path):
    a, b = tmp_path / "a.hdf5", tmp_path / "b.hdf5"
    make_file(a, 0, [3, 5])
    make_file(b, 1, [1, 4])
    return [a, b]


def reference_sample(file: int, episode: int, length: int, t: int, to: int, ta: int) -> tuple[np.ndarray, ...]:
    """Naive windows: obs steps t-To+1..t clamped at 0, actions t..t+Ta-1 clamped at T-1."""
    ep = episode_arrays(file, episode, length)
    obs_idx = [max(s, 0) for s in range(t - to + 1, t + 1)]
    act_idx = [min(s, length - 1) for s in range(t, t + ta)]
    return ep["obs"]["joint_pos"][obs_idx], ep["obs"]["point_cloud"][obs_idx], ep["actions"][act_idx]


def test_every_sample_matches_the_padded_reference_window(two_files):
    to, ta = 3, 4
    ds = DemoChunkDataset(two_files, ["joint_pos", "point_cloud"], obs_steps=to, horizon=ta)
    layout = [(0, 0, 3), (0, 1, 5), (1, 0, 1), (1, 1, 4)]
    assert len(ds) == 13 and ds.num_episodes == 4 and ds.episode_lengths == [3, 5, 1, 4]
    i = 0
    for file, episode, length in layout:
        for t in range(length):
            sample = ds[i]
            joint, cloud, actions = reference_sample(file, episode, length, t, to, ta)
            assert sample["obs"]["joint_pos"].shape == (to, 16) and sample["actions"].shape == (ta, 16)
            assert sample["obs"]["point_cloud"].shape == (to, NP, C)
            np.testing.assert_array_equal(sample["obs"]["joint_pos"].numpy(), joint)
            np.testing.assert_array_equal(sample["obs"]["point_cloud"].numpy(), cloud)
            np.testing.assert_array_equal(sample["actions"].numpy(), actions)
            i += 1
    with pytest.raises(IndexError):
        ds[13]
    np.testing.assert_array_equal(ds[-1]["actions"].numpy(), ds[12]["actions"].numpy())


def test_padding_values_at_episode_start_and_end(two_files):
    ds = DemoChunkDataset(two_files, ["joint_pos"], obs_steps=2, horizon=3)
    first = ds[0]["obs"]["joint_pos"][:, 0].tolist()  # file 0, episode 0, step 0: history = first obs twice
    assert first == [code(0, 0, 0)] * 2
    assert ds[1]["obs"]["joint_pos"][:, 0].tolist() == [code(0, 0, 0), code(0, 0, 1)]
    # file 0 episode 0 has 3 steps: the chunk of its last step repeats the last action
    assert ds[2]["actions"][:, 0].tolist() == [-code(0, 0, 2)] * 3
    assert ds[1]["actions"][:, 0].tolist() == [-code(0, 0, 1), -code(0, 0, 2), -code(0, 0, 2)]
    # the next episode does not leak into the previous one, and starts with its own first obs
    assert ds[3]["obs"]["joint_pos"][:, 0].tolist() == [code(0, 1, 0)] * 2
    # a one-step episode (file 1, episode 0 -> sample 8): everything is its single step
    single = ds[8]
    assert single["obs"]["joint_pos"][:, 0].tolist() == [code(1, 0, 0)] * 2
    assert single["actions"][:, 0].tolist() == [-code(1, 0, 0)] * 3


def test_dataloader_batches_and_key_renaming(two_files):
    ds = DemoChunkDataset(two_files, ["joint_pos"], obs_steps=2, horizon=4, key_map={"joint_pos": "state"})
    batch = next(iter(DataLoader(ds, batch_size=5, shuffle=False)))
    assert set(batch["obs"]) == {"state"}
    assert batch["obs"]["state"].shape == (5, 2, 16) and batch["actions"].shape == (5, 4, 16)
    assert batch["obs"]["state"].dtype == torch.float32


def test_stats_are_min_max_over_all_steps_in_the_trainer_format(two_files):
    ds = DemoChunkDataset(two_files, ["joint_pos", "point_cloud"], obs_steps=2, horizon=4)
    stats = ds.stats()
    dims = np.arange(16, dtype=np.float32) * 0.01
    lo, hi = code(0, 0, 0), code(1, 1, 3)  # smallest and largest step code in the data
    np.testing.assert_allclose(stats["joint_pos"]["min"], lo + dims, rtol=0, atol=1e-3)
    np.testing.assert_allclose(stats["joint_pos"]["max"], hi + dims, rtol=0, atol=1e-3)
    np.testing.assert_allclose(stats["actions"]["min"], -(hi + dims), rtol=0, atol=1e-3)
    np.testing.assert_allclose(stats["actions"]["max"], -(lo + dims), rtol=0, atol=1e-3)
    assert stats["point_cloud"]["min"].shape == (C,)
    assert stats["actions"]["min"].dtype == np.float32
    # the diffusion policy and trainer accept them as they are
    action_norm, joint_norm = stats_to_normalizers(stats)
    assert action_norm.dim == 16 and joint_norm.dim == 16
    merged = merge_stats([stats, DemoChunkDataset(two_files[1], ["joint_pos"]).stats()])
    np.testing.assert_allclose(merged["joint_pos"]["min"], stats["joint_pos"]["min"])


def test_success_only_skips_failed_episodes(tmp_path):
    path = tmp_path / "d.hdf5"
    make_file(path, 0, [2, 3, 4], successes=[True, False, True])
    ds = DemoChunkDataset(path, ["joint_pos"], success_only=True)
    assert ds.episode_lengths == [2, 4] and len(ds) == 6
    assert ds[2]["obs"]["joint_pos"][-1, 0].item() == code(0, 2, 0)  # third sample: episode 2, step 0


def test_from_cfg_checks_shapes_naming_both_sides(two_files):
    cfg = DiffusionPolicyCfg(num_points=NP, horizon_steps=8, act_steps=4)
    ds = DemoChunkDataset.from_cfg(two_files, cfg)
    assert ds.sample_shapes == {"point_cloud": (2, NP, C), "joint_pos": (2, 16), "actions": (8, 16)}
    sample = ds[0]
    assert sample["obs"]["point_cloud"].shape == (2, NP, C) and sample["actions"].shape == (8, 16)
    with pytest.raises(UserError, match=r"'joint_pos' samples have shape \(2, 16\) .* policy expects \(2, 14\)"):
        DemoChunkDataset.from_cfg(two_files, DiffusionPolicyCfg(num_points=NP, joint_dim=14, horizon_steps=8,
                                                                 act_steps=4))
    with pytest.raises(UserError, match=r"'point_cloud' samples have shape \(2, 4, 5\) .* expects \(2, 64, 5\)"):
        DemoChunkDataset.from_cfg(two_files, DiffusionPolicyCfg(num_points=64, horizon_steps=8, act_steps=4))
    with pytest.raises(UserError, match=r"policy expects observation 'rgb'"):
        DemoChunkDataset(two_files, ["joint_pos"], expected_shapes={"rgb": (2, 3)})
    DemoChunkDataset(two_files, ["point_cloud"], expected_shapes={"point_cloud": (2, None, C)})  # wildcard
    renamed = DemoChunkDataset.from_cfg(two_files, DiffusionPolicyCfg(use_point_cloud=False, horizon_steps=8,
                                                                      act_steps=4), key_map={"joint_pos": "joint_pos"})
    assert set(renamed[0]["obs"]) == {"joint_pos"}


def test_missing_key_and_disagreeing_files(tmp_path, two_files):
    with pytest.raises(UserError, match=r"has no 'obs/rgb'; it holds actions, obs/joint_pos"):
        DemoChunkDataset(two_files, ["rgb"])
    other = tmp_path / "other.hdf5"
    with DemoWriter(other, TASK, {}, {"actions": ((16,), "float32"), "obs/joint_pos": ((14,), "float32")}) as w:
        w.append_episode({"joint_pos": np.zeros((3, 14), np.float32)}, np.zeros((3, 16), np.float32))
    with pytest.raises(UserError, match=r"'obs/joint_pos' has per-step shape \(14,\) in .*other.hdf5 but \(16,\)"):
        DemoChunkDataset([two_files[0], other], ["joint_pos"])
    with pytest.raises(UserError, match="does not exist"):
        DemoChunkDataset(tmp_path / "missing.hdf5", ["joint_pos"])
    empty = tmp_path / "empty.hdf5"
    DemoWriter(empty, TASK, {}, EXPECTED).close()
    with pytest.raises(UserError, match="no episodes"):
        DemoChunkDataset(empty, ["joint_pos"])
    with pytest.raises(UserError, match="obs_steps"):
        DemoChunkDataset(two_files, ["joint_pos"], obs_steps=0)


def test_max_episodes_takes_the_first_demos_across_files(two_files):
    three = DemoChunkDataset(two_files, ["joint_pos"], obs_steps=2, horizon=4, max_episodes=3)
    assert three.episode_lengths == [3, 5, 1] and len(three) == 9  # file a's two episodes, then b's first
    assert three[8]["actions"][0, 0].item() == pytest.approx(-code(1, 0, 0))
    with pytest.raises(UserError, match="5 demos asked for but .* hold only 4"):
        DemoChunkDataset(two_files, ["joint_pos"], max_episodes=5)


def test_bad_numbers_are_named_or_skipped(tmp_path):
    import h5py

    path = tmp_path / "bad.hdf5"
    make_file(path, 0, [6, 6, 6])
    with h5py.File(path, "r+") as f:  # as a file from elsewhere may be (our writer refuses bad numbers)
        f["data/demo_1/actions"][3, 5] = np.nan
        f["data/demo_2/obs/joint_pos"][4, 0] = np.inf
    with pytest.raises(UserError, match=r"demo demo_1 of .*bad.hdf5 has NaN or inf in 'actions' \(first at step 3\)"):
        DemoChunkDataset([path], ["joint_pos"], obs_steps=2, horizon=4)
    kept = DemoChunkDataset([path], ["joint_pos"], obs_steps=2, horizon=4, skip_bad=True)
    assert kept.episode_lengths == [6]
    assert [s.split(":")[-1] for s in kept.skipped] == [
        "demo_1 (has NaN or inf in 'actions' (first at step 3))",
        "demo_2 (has NaN or inf in 'obs/joint_pos' (first at step 4))"]
