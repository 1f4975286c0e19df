"""Demo files: writer/reader round trip, appending, refusing foreign files untouched, clear errors, Isaac Lab
compatibility, and a writer killed with SIGKILL at several moments losing no finished episode."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from vt_refine.data.demo_writer import DemoWriter

from vt_refine.data.hdf5_dataset import DemoReader
from vt_refine.utils.errors import UserError

TASK = "VT-Refine-Test-v0"
NP, C = 6, 5  # points per cloud, point channels
EXPECTED = {
    "actions": ((16,), "float32"),
    "obs/joint_pos": ((16,), "float32"),
    "obs/point_cloud": ((NP, C), "float32"),
    "states/critic": ((7,), "float32"),
}


def make_episode(i: int, length: int, num_points: int = NP) -> dict:
    """Deterministic episode i (so a test can rebuild what a killed writer had written)."""
    rng = np.random.default_rng(1000 + i)
    return {
        "obs": {"joint_pos": rng.standard_normal((length, 16)).astype(np.float32),
                "point_cloud": rng.random((length, num_points, C), dtype=np.float32)},
        "actions": rng.standard_normal((length, 16)).astype(np.float32),
        "states": {"critic": rng.standard_normal((length, 7)).astype(np.float32)},
        "success": i % 3 != 1,
        "seed": 500 + i,
    }


def write(writer: DemoWriter, i: int, length: int) -> str:
    ep = make_episode(i, length)
    return writer.append_episode(ep["obs"], ep["actions"], ep["states"], success=ep["success"], seed=ep["seed"],
                                 extra_attrs={"index": i})


def assert_episode_equal(reader: DemoReader, index: int, i: int, length: int) -> None:
    ref = make_episode(i, length)
    got = reader.episode(index)
    assert got.name == f"demo_{index}"
    assert got.length == length
    np.testing.assert_array_equal(got.actions, ref["actions"])
    for key in ("joint_pos", "point_cloud"):
        np.testing.assert_array_equal(got.obs[key], ref["obs"][key])
    np.testing.assert_array_equal(got.states["critic"], ref["states"]["critic"])
    assert got.success == ref["success"] and got.seed == ref["seed"]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------- round trip
def test_round_trip_episodes_of_different_lengths(tmp_path):
    path = tmp_path / "demos.hdf5"
    lengths = [3, 11, 1, 7]
    with DemoWriter(path, TASK, {"seed": 42, "cfg": {"num_envs": 4}}, EXPECTED) as writer:
        assert writer.num_episodes() == 0 and writer.resume_count(4) == 4
        names = [write(writer, i, n) for i, n in enumerate(lengths)]
        assert names == ["demo_0", "demo_1", "demo_2", "demo_3"]
        assert writer.num_episodes() == 4 and writer.resume_count(4) == 0 and writer.resume_count(6) == 2

    with DemoReader(path) as reader:
        assert reader.task == TASK
        assert reader.env_args["seed"] == 42 and reader.env_args["cfg"] == {"num_envs": 4}
        assert reader.episode_names == names and len(reader) == 4
        assert reader.lengths == lengths and reader.total_steps == sum(lengths)
        assert reader.keys == ["actions", "obs/joint_pos", "obs/point_cloud", "states/critic"]
        assert reader.obs_keys == ["joint_pos", "point_cloud"]
        assert reader.shapes["obs/point_cloud"] == (NP, C)
        assert reader.dtypes["actions"] == np.float32
        for index, n in enumerate(lengths):
            assert_episode_equal(reader, index, index, n)
        assert reader.attrs(1) == {"num_samples": 11, "success": False, "seed": 501, "index": 1}
        assert reader.successes() == [True, False, True, True]
        assert reader.seeds() == [500, 501, 502, 503]
        assert reader.read("demo_2", "obs/joint_pos").shape == (1, 16)

    # the raw layout is the one of Isaac Lab's recorders
    with h5py.File(path, "r") as f:
        assert int(f.attrs["format_version"]) == 1
        data = f["data"]
        assert int(data.attrs["total"]) == sum(lengths)
        env_args = json.loads(data.attrs["env_args"])
        assert env_args["env_name"] == TASK and env_args["type"] == 2
        assert set(data) == {"demo_0", "demo_1", "demo_2", "demo_3"}  # no temporary groups left behind
        assert data["demo_1/obs/joint_pos"].shape == (11, 16)
        assert int(data["demo_1"].attrs["num_samples"]) == 11


def test_torch_inputs_and_dtype_cast(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "d.hdf5"
    with DemoWriter(path, TASK, {}, {"actions": ((16,), "float32"), "obs/joint_pos": ((16,), "float32")}) as w:
        w.append_episode({"joint_pos": torch.ones(4, 16, dtype=torch.float64)}, np.zeros((4, 16), np.float64),
                         success=True, seed=None)
    with DemoReader(path) as r:
        ep = r.episode(0)
        assert ep.obs["joint_pos"].dtype == np.float32 and ep.seed is None
        assert "seed" not in r.attrs(0)  # like Isaac Lab: no attribute when the seed is unknown


def test_append_to_existing_file_continues_numbering(tmp_path):
    path = tmp_path / "demos.hdf5"
    with DemoWriter(path, TASK, {"seed": 1}, EXPECTED) as w:
        write(w, 0, 4)
        write(w, 1, 5)
    with DemoWriter(path, TASK, {"seed": 2}, expected=None) as w:  # None: the file's own layout
        assert w.schema == {k: ((*s,), np.dtype(d)) for k, (s, d) in EXPECTED.items()}
        assert w.num_episodes() == 2 and w.resume_count(5) == 3
        assert write(w, 2, 6) == "demo_2"
    with DemoReader(path) as r:
        assert r.lengths == [4, 5, 6] and r.total_steps == 15
        assert r.env_args["seed"] == 1  # the first writer's env_args are kept
        for i, n in enumerate([4, 5, 6]):
            assert_episode_equal(r, i, i, n)


def test_refuses_other_task_and_leaves_file_unchanged(tmp_path):
    path = tmp_path / "demos.hdf5"
    with DemoWriter(path, TASK, {}, EXPECTED) as w:
        write(w, 0, 3)
    before = sha(path)
    with pytest.raises(UserError, match=r"task 'VT-Refine-Test-v0' but this run collects 'Other-Task-v0'"):
        DemoWriter(path, "Other-Task-v0", {}, EXPECTED)
    assert sha(path) == before
    with DemoReader(path) as r:
        assert len(r) == 1
        assert_episode_equal(r, 0, 0, 3)


def test_refuses_other_layout_naming_both_sides_and_leaves_file_unchanged(tmp_path):
    path = tmp_path / "demos.hdf5"
    with DemoWriter(path, TASK, {}, EXPECTED) as w:
        write(w, 0, 3)
    before = sha(path)
    other = dict(EXPECTED, **{"obs/joint_pos": ((14,), "float32")})
    with pytest.raises(UserError, match=r"obs/joint_pos: file \(16,\) float32, this run \(14,\) float32"):
        DemoWriter(path, TASK, {}, other)
    fewer = {k: v for k, v in EXPECTED.items() if k != "states/critic"}
    with pytest.raises(UserError, match=r"states/critic: file \(7,\) float32, this run missing"):
        DemoWriter(path, TASK, {}, fewer)
    assert sha(path) == before


def test_bad_episode_is_refused_and_nothing_is_written(tmp_path):
    path = tmp_path / "demos.hdf5"
    with DemoWriter(path, TASK, {}, EXPECTED) as w:
        write(w, 0, 3)
        before = sha(path)
        ep = make_episode(1, 4)
        with pytest.raises(UserError, match=r"'obs/joint_pos' has shape \(4, 15\) but the file expects \(T, 16\)"):
            w.append_episode({**ep["obs"], "joint_pos": np.zeros((4, 15), np.float32)}, ep["actions"], ep["states"])
        with pytest.raises(UserError, match=r"missing \['states/critic'\]"):
            w.append_episode(ep["obs"], ep["actions"], None)
        with pytest.raises(UserError, match=r"'obs/point_cloud' has 5 steps but"):
            w.append_episode({**ep["obs"], "point_cloud": np.zeros((5, NP, C), np.float32)}, ep["actions"],
                             ep["states"])
        bad = ep["actions"].copy()
        bad[2, 3] = np.nan
        with pytest.raises(UserError, match=r"NaN or inf \(first at step 2\)"):
            w.append_episode(ep["obs"], bad, ep["states"])
        with pytest.raises(UserError, match="reserved"):
            w.append_episode(ep["obs"], ep["actions"], ep["states"], extra_attrs={"success": True})
        assert sha(path) == before and w.num_episodes() == 1
        assert write(w, 1, 4) == "demo_1"  # the writer is still usable
    assert not list(tmp_path.glob("*.tmp"))


def test_second_writer_on_same_file_is_refused(tmp_path):
    path = tmp_path / "demos.hdf5"
    with DemoWriter(path, TASK, {}, EXPECTED):
        with pytest.raises(UserError, match="being written by another process"):
            DemoWriter(path, TASK, {}, EXPECTED)
    DemoWriter(path, TASK, {}, EXPECTED).close()  # free again once the first one is closed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demos.hdf5"]  # and no lock file is left behind


def test_a_lock_taken_on_a_deleted_lock_file_is_not_kept(tmp_path):
    """Between a writer's open() of the lock file and its flock, the holder may close (and delete the file): the
    late writer must not keep a lock on the deleted file while a third one locks a new file."""
    import fcntl
    import os

    path = tmp_path / "demos.hdf5"
    lock_path = tmp_path / ".demos.hdf5.lock"
    stale = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)  # opened, then the file is replaced
    lock_path.unlink()
    fcntl.flock(stale, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a lock on the orphan inode blocks nobody
    writer = DemoWriter(path, TASK, {}, EXPECTED)  # takes the real file
    try:
        with pytest.raises(UserError, match="being written by another process"):
            DemoWriter(path, TASK, {}, EXPECTED)
        assert os.fstat(writer._lock_fd).st_ino == os.stat(lock_path).st_ino
    finally:
        writer.close()
        os.close(stale)


# ------------------------------------------------------------------------------------- bad files
def test_missing_file_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        DemoReader(tmp_path / "nope.hdf5")


def test_not_hdf5_error(tmp_path):
    path = tmp_path / "notes.hdf5"
    path.write_text("these are not demonstrations\n")
    with pytest.raises(UserError, match="is not an HDF5 file"):
        DemoReader(path)
    with pytest.raises(UserError, match="is not an HDF5 file"):
        DemoWriter(path, TASK, {}, EXPECTED)
    assert path.read_text() == "these are not demonstrations\n"


@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_truncated_file_error(tmp_path, keep):
    path = tmp_path / "demos.hdf5"
    with DemoWriter(path, TASK, {}, EXPECTED) as w:
        for i in range(3):
            write(w, i, 20)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(UserError, match=r"is truncated or corrupt: .*re-collect or delete it"):
        DemoReader(path)
    with pytest.raises(UserError, match=r"is truncated or corrupt"):
        DemoWriter(path, TASK, {}, EXPECTED)


def test_file_without_data_group_and_missing_key(tmp_path):
    path = tmp_path / "other.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(UserError, match="has no 'data' group"):
        DemoReader(path)
    good = tmp_path / "demos.hdf5"
    with DemoWriter(good, TASK, {}, EXPECTED) as w:
        write(w, 0, 3)
    with DemoReader(good) as r:
        with pytest.raises(UserError, match=r"has no 'obs/rgb'; available: actions, obs/joint_pos"):
            r.read(0, "obs/rgb")
        with pytest.raises(UserError, match="has no episode 'demo_9'"):
            r.episode("demo_9")


def test_bad_expected_argument(tmp_path):
    with pytest.raises(UserError, match="include 'actions'"):
        DemoWriter(tmp_path / "a.hdf5", TASK, {}, {"obs/joint_pos": ((16,), "float32")})
    with pytest.raises(UserError, match="must be 'actions', 'obs/<key>' or 'states/<key>'"):
        DemoWriter(tmp_path / "b.hdf5", TASK, {}, {"actions": ((16,), "float32"), "joint_pos": ((16,), "f4")})
    with pytest.raises(UserError, match="does not exist yet; pass expected"):
        DemoWriter(tmp_path / "c.hdf5", TASK, {}, None)
    assert not any((tmp_path / name).exists() for name in ("a.hdf5", "b.hdf5", "c.hdf5"))


# ------------------------------------------------------------------------------------- Isaac Lab
def test_isaaclab_handler_reads_our_file_and_we_read_and_extend_its_file(tmp_path):
    datasets = pytest.importorskip("isaaclab.utils.datasets")
    torch = pytest.importorskip("torch")
    ours = tmp_path / "ours.hdf5"
    with DemoWriter(ours, TASK, {}, EXPECTED) as w:
        write(w, 0, 4)
        write(w, 1, 6)
    handler = datasets.HDF5DatasetFileHandler()
    handler.open(str(ours))
    assert handler.get_num_episodes() == 2 and handler.get_env_name() == TASK
    ep = handler.load_episode("demo_1", device="cpu")
    assert ep.data["obs"]["joint_pos"].shape == (6, 16) and ep.data["states"]["critic"].shape == (6, 7)
    np.testing.assert_array_equal(ep.data["actions"].numpy(), make_episode(1, 6)["actions"])
    assert int(ep.seed) == 501 and not bool(ep.success)
    handler.close()

    theirs = tmp_path / "theirs.hdf5"
    handler = datasets.HDF5DatasetFileHandler()
    handler.create(str(theirs), env_name=TASK)
    episode = datasets.EpisodeData()
    ref = make_episode(7, 5)
    episode.data = {"actions": torch.from_numpy(ref["actions"]),
                    "obs": {k: torch.from_numpy(v) for k, v in ref["obs"].items()},
                    "states": {"critic": torch.from_numpy(ref["states"]["critic"])}}
    episode.seed, episode.success = 507, True
    handler.write_episode(episode)
    handler.flush()
    handler.close()
    with DemoReader(theirs) as r:  # no vt_refine_schema attribute: layout taken from the episode
        assert r.task == TASK and r.lengths == [5] and r.shapes == {k: v[0] for k, v in EXPECTED.items()}
        np.testing.assert_array_equal(r.read(0, "obs/point_cloud"), ref["obs"]["point_cloud"])
    with DemoWriter(theirs, TASK, {}, EXPECTED) as w:
        assert w.num_episodes() == 1 and write(w, 1, 3) == "demo_1"
    with DemoReader(theirs) as r:
        assert r.lengths == [5, 3]


# ------------------------------------------------------------------------------------- kill -9
CHILD = textwrap.dedent(
    """
    import os, shutil, sys, time
    sys.path.insert(0, {tests_dir!r})
    import h5py
    import numpy as np
    import vt_refine.data.demo_writer as hd
    from test_data_hdf5 import EXPECTED, TASK, write

    path, pause_in = sys.argv[1], sys.argv[5]
    target, length, pause_at = (int(a) for a in sys.argv[2:5])
    state = {{"episode": -1, "calls": 0}}

    def pause():
        print("PAUSED", flush=True)
        time.sleep(600)  # the test kills us here

    def active():
        return state["episode"] == pause_at

    real_copy, real_create = shutil.copyfile, h5py.Group.create_dataset
    real_replace, real_fsync_dir = os.replace, hd._fsync_dir

    def copy_half(src, dst):  # killed in the middle of copying the published file
        if active() and pause_in == "copy":
            data = open(src, "rb").read()
            with open(dst, "wb") as f:
                f.write(data[: len(data) // 2])
                f.flush()
            pause()
        return real_copy(src, dst)

    def create_dataset(self, *args, **kwargs):  # killed with the copy open in HDF5, half the datasets written
        state["calls"] += 1
        out = real_create(self, *args, **kwargs)
        if active() and pause_in == "dataset" and state["calls"] == 2:
            self.file.flush()
            pause()
        return out

    def replace(src, dst):  # killed with the new file complete but not yet renamed into place
        if active() and pause_in == "replace":
            pause()
        return real_replace(src, dst)

    def fsync_dir(p):  # killed right after the rename, before the writer updated its counters
        real_fsync_dir(p)
        if active() and pause_in == "renamed":
            pause()

    shutil.copyfile, h5py.Group.create_dataset = copy_half, create_dataset
    os.replace, hd._fsync_dir = replace, fsync_dir
    writer = hd.DemoWriter(path, TASK, {{"seed": 0}}, EXPECTED)
    print("READY", writer.num_episodes(), flush=True)
    for i in range(writer.num_episodes(), writer.num_episodes() + writer.resume_count(target)):
        state["episode"], state["calls"] = i, 0
        write(writer, i, length)
        print("DONE", i, flush=True)
    writer.close()
    print("FINISHED", flush=True)
    """
)


def _start(tmp_path: Path, path: Path, target: int, length: int, pause_at: int = -1, pause_in: str = "none"):
    """Writer subprocess; its stdout lines arrive in ``proc.lines`` (a queue filled by a thread)."""
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(tests_dir=str(Path(__file__).parent)))
    proc = subprocess.Popen([sys.executable, str(script), str(path), str(target), str(length), str(pause_at),
                             pause_in], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    proc.lines = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            proc.lines.put(line.strip())
        proc.lines.put(None)  # end of output

    threading.Thread(target=pump, daemon=True).start()
    return proc


def _read_until(proc: subprocess.Popen, word: str, timeout: float = 60.0) -> list[str]:
    """Lines of the child's stdout up to and including the first that starts with ``word``."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = proc.lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if line is None:
            proc.wait(timeout=30)
            raise AssertionError(f"child exited before '{word}'; stdout {lines}, stderr:\n{proc.stderr.read()}")
        lines.append(line)
        if line.startswith(word):
            return lines
    proc.kill()
    raise AssertionError(f"no '{word}' from the child within {timeout} s; got {lines}")


def _kill(proc: subprocess.Popen) -> list[str]:
    """SIGKILL the child; returns the words it had printed that we had not read yet."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    rest: list[str] = []
    while (line := proc.lines.get(timeout=30)) is not None:
        rest.extend(line.split())
    proc.stderr.close()
    return rest


def _check_file(path: Path, expected_episodes: int, length: int) -> None:
    with DemoReader(path) as r:
        assert r.task == TASK
        assert r.episode_names == [f"demo_{i}" for i in range(expected_episodes)]
        assert r.total_steps == expected_episodes * length
        for i in range(expected_episodes):
            assert_episode_equal(r, i, i, length)
    with h5py.File(path, "r") as f:  # nothing half-written inside the published file either
        assert set(f["data"]) == {f"demo_{i}" for i in range(expected_episodes)}
        assert int(f["data"].attrs["num_demos"]) == expected_episodes


def _resume_to_end(tmp_path: Path, path: Path, target: int, length: int, done_before: int) -> None:
    proc = _start(tmp_path, path, target, length)
    lines = _read_until(proc, "FINISHED", timeout=120)
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    proc.stderr.close()
    out = "\n".join(lines)
    assert f"READY {done_before}" in out and "FINISHED" in out
    _check_file(path, target, length)
    assert not list(path.parent.glob(f".{path.name}.*.tmp")), "stale temporary copies must be cleaned up"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("pause_in,completed", [("copy", 2), ("dataset", 2), ("replace", 2), ("renamed", 3)])
def test_sigkill_at_each_phase_of_an_append(tmp_path, pause_in, completed):
    """Kill -9 while episode 2 is being appended, at four precise moments; then resume to the target."""
    path, target, length = tmp_path / "demos.hdf5", 5, 8
    proc = _start(tmp_path, path, target, length, pause_at=2, pause_in=pause_in)
    lines = _read_until(proc, "PAUSED")
    assert "DONE 1" in lines and "DONE 2" not in lines
    _kill(proc)
    leftovers = list(tmp_path.glob(".demos.hdf5.*.tmp"))
    assert bool(leftovers) == (pause_in != "renamed")  # the kill did hit a half-made copy (except after rename)
    _check_file(path, completed, length)
    with DemoWriter(path, TASK, {}, EXPECTED) as w:
        assert w.num_episodes() == completed and w.resume_count(target) == target - completed
    _resume_to_end(tmp_path, path, target, length, completed)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("after_done,delay", [(0, 0.0), (3, 0.002), (10, 0.006)])
def test_sigkill_at_arbitrary_times(tmp_path, after_done, delay):
    """Kill -9 a free-running writer a few ms after it reported an episode, wherever it then is."""
    path, target, length = tmp_path / "demos.hdf5", 200, 120
    proc = _start(tmp_path, path, target, length)
    seen = _read_until(proc, f"DONE {after_done}")
    time.sleep(delay)
    rest = _kill(proc)
    reported = after_done + 1 + sum(1 for word in rest if word == "DONE")
    assert "FINISHED" not in rest, "the kill should land before the writer finished; raise target"
    with DemoReader(path) as r:
        done = len(r)
    # every episode the writer reported is there; at most one more (written, killed before it printed)
    assert reported <= done <= reported + 1, (seen, rest)
    _check_file(path, done, length)
    _resume_to_end(tmp_path, path, done + 2, length, done)
