"""VT-Refine / DPPO .npz format: export layout and normalisation, lossless round trip (constant dims
included), DPPO-spelled normalisers, and clear errors for bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vt_refine.data.demo_writer import DemoWriter

from vt_refine.data.hdf5_dataset import DemoReader
from vt_refine.data.npz_format import export_npz, import_npz, load_normalizer, normalize, unnormalize
from vt_refine.policies.diffusion.policy import stats_to_normalizers
from vt_refine.utils.errors import UserError

TASK = "VT-Refine-Test-v0"
NP, C = 5, 5
EXPECTED = {"actions": ((16,), "float32"), "obs/joint_pos": ((16,), "float32"),
            "obs/point_cloud": ((NP, C), "float32")}
LENGTHS = [4, 9, 1, 6]


def make_episode(i: int, length: int) -> dict:
    rng = np.random.default_rng(i)
    joint = rng.uniform(-2.0, 2.0, (length, 16)).astype(np.float32)
    joint[:, 7] = 0.0123  # a constant dim (e.g. an unused finger joint)
    joint[:, 15] = rng.uniform(-1e-3, 1e-3, length).astype(np.float32) + 300.0  # tiny range, large offset
    actions = rng.uniform(-3.0, 3.0, (length, 16)).astype(np.float32)
    actions[:, 3] = -0.5  # constant in every episode
    cloud = rng.uniform(-0.3, 0.3, (length, NP, C)).astype(np.float32)
    return {"obs": {"joint_pos": joint, "point_cloud": cloud}, "actions": actions}


@pytest.fixture
def demo(tmp_path):
    path = tmp_path / "demos.hdf5"
    with DemoWriter(path, TASK, {"seed": 9, "cfg": {"num_envs": 2}}, EXPECTED) as w:
        for i, n in enumerate(LENGTHS):
            ep = make_episode(i, n)
            w.append_episode(ep["obs"], ep["actions"], success=i != 2, seed=None if i == 3 else 40 + i)
    return path


def test_export_layout_and_normalisation(demo, tmp_path):
    out, norm = tmp_path / "train.npz", tmp_path / "normalization.npz"
    summary = export_npz(demo, out, norm)
    assert summary["num_trajectories"] == 4 and summary["num_steps"] == sum(LENGTHS)
    assert summary["keys"] == ["actions", "joint_states", "point_cloud"]
    with np.load(out, allow_pickle=False) as data:
        assert data["traj_lengths"].tolist() == LENGTHS and data["traj_lengths"].dtype == np.int64
        actions, joints, cloud = data["actions"], data["joint_states"], data["point_cloud"]
        assert actions.shape == (20, 16) and joints.shape == (20, 16) and cloud.shape == (20, NP, C)
        assert actions.dtype == np.float32
        assert data["traj_success"].tolist() == [True, True, False, True]
        assert data["traj_seeds"].tolist() == [40, 41, 42, -1]
        assert json.loads(str(data["env_args"]))["env_name"] == TASK
    raw_actions = np.concatenate([make_episode(i, n)["actions"] for i, n in enumerate(LENGTHS)])
    raw_cloud = np.concatenate([make_episode(i, n)["obs"]["point_cloud"] for i, n in enumerate(LENGTHS)])
    varying = [d for d in range(16) if d != 3]
    assert np.all(actions[:, 3] == 0.0)  # a constant dim maps to 0, not NaN
    np.testing.assert_allclose(actions[:, varying].min(0), -1.0, atol=1e-6)
    np.testing.assert_allclose(actions[:, varying].max(0), 1.0, atol=1e-6)
    assert np.all(joints[:, 7] == 0.0) and joints[:, 15].min() == pytest.approx(-1) and joints[:, 15].max() == 1
    np.testing.assert_array_equal(cloud, raw_cloud)  # points are not normalised
    # trajectory i occupies rows traj_lengths[:i].sum() .. in order
    np.testing.assert_allclose(unnormalize(actions[4:13], raw_actions.min(0), raw_actions.max(0)),
                               make_episode(1, 9)["actions"], atol=1e-5)
    with np.load(norm, allow_pickle=False) as n:
        assert set(n.files) == {"stats.actions.min", "stats.actions.max", "stats.joint_states.min",
                                "stats.joint_states.max", "action_min", "action_max", "obs_min", "obs_max"}
        np.testing.assert_array_equal(n["stats.actions.min"], raw_actions.min(0))
        np.testing.assert_array_equal(n["action_max"], n["stats.actions.max"])
        np.testing.assert_array_equal(n["obs_min"], n["stats.joint_states.min"])


def test_round_trip_restores_the_data(demo, tmp_path):
    out, norm, back = tmp_path / "train.npz", tmp_path / "norm.npz", tmp_path / "back.hdf5"
    export_npz(demo, out, norm)
    assert import_npz(out, norm, back, TASK) == 4
    with DemoReader(demo) as a, DemoReader(back) as b:
        assert b.task == TASK and b.env_args["seed"] == 9 and b.env_args["cfg"] == {"num_envs": 2}
        assert b.lengths == LENGTHS and b.keys == a.keys and b.dtypes == a.dtypes
        assert b.successes() == a.successes() and b.seeds() == [40, 41, 42, None]
        for i in range(4):
            for key in a.keys:
                x, y = a.read(i, key), b.read(i, key)
                # float32 rounding only: of the normalised value (scaled back by the range of the dim over
                # all episodes) and of the restored value (one ulp)
                every = np.concatenate([a.read(j, key) for j in range(4)])
                span = every.max(axis=0) - every.min(axis=0)
                tol = span * 2.0**-24 + np.spacing(np.abs(x))
                assert np.all(np.abs(y - x) <= tol), (key, np.abs(y - x).max())
            np.testing.assert_array_equal(b.read(i, "obs/joint_pos")[:, 7], a.read(i, "obs/joint_pos")[:, 7])
            np.testing.assert_array_equal(b.read(i, "actions")[:, 3], a.read(i, "actions")[:, 3])
            np.testing.assert_array_equal(b.read(i, "obs/point_cloud"), a.read(i, "obs/point_cloud"))
    # and a second export of the imported file gives the same npz
    out2, norm2 = tmp_path / "train2.npz", tmp_path / "norm2.npz"
    export_npz(back, out2, norm2)
    with np.load(out) as d1, np.load(out2) as d2:
        np.testing.assert_allclose(d2["actions"], d1["actions"], atol=2e-6)
        np.testing.assert_array_equal(d2["traj_lengths"], d1["traj_lengths"])


def test_normalize_helpers_are_inverse_and_handle_constant_dims():
    x = np.array([[0.0, 5.0, 1.0], [2.0, 5.0, 3.0]])
    lo, hi = x.min(0), x.max(0)
    n = normalize(x, lo, hi)
    np.testing.assert_array_equal(n, [[-1.0, 0.0, -1.0], [1.0, 0.0, 1.0]])
    np.testing.assert_array_equal(unnormalize(n, lo, hi), x)


def test_dppo_spelled_normaliser_and_states_key(tmp_path):
    """DPPO's own files: 'states' instead of 'joint_states', normaliser with obs_*/action_* only."""
    rng = np.random.default_rng(0)
    lengths = np.array([3, 2])
    actions, states = rng.uniform(-1, 1, (5, 16)).astype(np.float32), rng.uniform(-1, 1, (5, 16)).astype(np.float32)
    a_lo, a_hi = np.full(16, -2.0, np.float32), np.full(16, 2.0, np.float32)
    s_lo, s_hi = np.zeros(16, np.float32), np.full(16, 4.0, np.float32)
    np.savez(tmp_path / "train.npz", traj_lengths=lengths, actions=actions, states=states)
    np.savez(tmp_path / "normalization.npz", action_min=a_lo, action_max=a_hi, obs_min=s_lo, obs_max=s_hi)
    key_map = {"actions": "actions", "obs/joint_pos": "states"}
    n = import_npz(tmp_path / "train.npz", tmp_path / "normalization.npz", tmp_path / "d.hdf5", TASK, key_map,
                   normalize_keys=("actions", "states"))
    assert n == 2
    with DemoReader(tmp_path / "d.hdf5") as r:
        assert r.lengths == [3, 2] and r.successes() == [True, True] and r.seeds() == [None, None]
        np.testing.assert_allclose(r.read(1, "actions"), (actions[3:] + 1) / 2 * 4 - 2, atol=1e-6)
        np.testing.assert_allclose(r.read(0, "obs/joint_pos"), (states[:3] + 1) / 2 * 4, atol=1e-6)
    stats = load_normalizer(tmp_path / "normalization.npz", key_map=key_map)
    assert set(stats) == {"actions", "joint_pos"}
    stats_to_normalizers(stats)  # the diffusion policy takes them as they are


def test_bad_npz_errors(demo, tmp_path):
    out, norm = tmp_path / "train.npz", tmp_path / "norm.npz"
    export_npz(demo, out, norm)
    data = dict(np.load(out, allow_pickle=False))

    def bad(name: str, **changes):
        arrays = {k: v for k, v in {**data, **changes}.items() if v is not None}
        np.savez(tmp_path / name, **arrays)
        return tmp_path / name

    target = tmp_path / "x.hdf5"
    with pytest.raises(UserError, match=r"traj_lengths sum to 21 steps but 'actions' has 20 rows"):
        import_npz(bad("sum.npz", traj_lengths=np.array([4, 9, 1, 7])), norm, target, TASK)
    with pytest.raises(UserError, match="has no 'traj_lengths'"):
        import_npz(bad("nolen.npz", traj_lengths=None), norm, target, TASK)
    with pytest.raises(UserError, match="positive integers"):
        import_npz(bad("neg.npz", traj_lengths=np.array([4, 9, -1, 8])), norm, target, TASK)
    with pytest.raises(UserError, match=r"has no \['joint_states'\]"):
        import_npz(bad("nokey.npz", joint_states=None), norm, target, TASK)
    np.savez(tmp_path / "norm_bad.npz", **{"stats.actions.min": np.zeros(16), "stats.actions.max": np.ones(16)})
    with pytest.raises(UserError, match=r"no statistics of 'joint_states' \(stats.joint_states.min/max or obs_min"):
        import_npz(out, tmp_path / "norm_bad.npz", target, TASK)
    np.savez(tmp_path / "norm_dim.npz", **{"stats.actions.min": np.zeros(15), "stats.actions.max": np.ones(15),
                                          "obs_min": np.zeros(16), "obs_max": np.ones(16)})
    with pytest.raises(UserError, match=r"stats of 'actions' have 15 dims but the data has 16"):
        import_npz(out, tmp_path / "norm_dim.npz", target, TASK)
    (tmp_path / "garbage.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(UserError, match="is not a readable .npz file"):
        import_npz(tmp_path / "garbage.npz", norm, target, TASK)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    with pytest.raises(UserError, match="is not a readable .npz file"):
        import_npz(truncated, norm, target, TASK)
    with pytest.raises(UserError, match="does not exist"):
        import_npz(tmp_path / "missing.npz", norm, target, TASK)
    with pytest.raises(UserError, match="pass the normaliser file"):
        import_npz(out, None, target, TASK)
    assert not target.exists() and not list(tmp_path.glob(".x.hdf5*"))  # nothing half-written left behind
    import_npz(out, norm, target, TASK)
    with pytest.raises(UserError, match="already exists"):
        import_npz(out, norm, target, TASK)
    import_npz(out, norm, target, TASK, overwrite=True)


def test_export_errors(demo, tmp_path):
    with pytest.raises(UserError, match=r"has no \['obs/rgb'\]"):
        export_npz(demo, tmp_path / "a.npz", tmp_path / "n.npz", {"actions": "actions", "obs/rgb": "rgb"})
    with pytest.raises(UserError, match=r"normalize_keys \['joint_states'\] are not exported"):
        export_npz(demo, tmp_path / "a.npz", tmp_path / "n.npz", {"actions": "actions"})
    with pytest.raises(UserError, match="does not exist"):
        export_npz(tmp_path / "missing.hdf5", tmp_path / "a.npz", tmp_path / "n.npz")
    assert not (tmp_path / "a.npz").exists()
