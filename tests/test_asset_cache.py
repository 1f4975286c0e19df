"""Tests of the content-addressed asset cache (vt_refine.assets.cache)."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import numpy as np
import pytest
import trimesh

from vt_refine.assets import cache
from vt_refine.assets.cache import (
    MANIFEST_NAME,
    AssetBuildError,
    AssetCacheError,
    asset_cache_dir,
    cache_key,
    cached_build,
    mesh_files,
)


@pytest.fixture(autouse=True)
def cache_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("VT_REFINE_CACHE_DIR", str(root))
    return root


class CountingBuild:
    """Build callback that writes two text files and counts its calls."""

    def __init__(self, text: str = "hello"):
        self.calls = 0
        self.text = text

    def __call__(self, folder: Path) -> None:
        self.calls += 1
        (folder / "a.txt").write_text(self.text)
        (folder / "sub").mkdir()
        (folder / "sub" / "b.txt").write_text(self.text * 2)


FILES = ["a.txt", "sub/b.txt"]


def _no_leftovers(root: Path) -> bool:
    """True when no temporary or stale sibling folders remain."""
    return not [p.name for p in root.iterdir() if p.name.startswith(".")]


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    assert asset_cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("VT_REFINE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert asset_cache_dir() == tmp_path / "xdg" / "vt_refine" / "assets"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert asset_cache_dir() == tmp_path / "home" / ".cache" / "vt_refine" / "assets"


def test_second_call_reuses_the_entry(cache_root):
    build = CountingBuild()
    first = cached_build("demo", {"size": 0.01, "n": 3}, build, FILES)
    second = cached_build("demo", {"n": 3, "size": 0.01}, build, FILES)  # key order does not matter
    assert first == second and first.parent == cache_root
    assert build.calls == 1
    assert (first / "sub" / "b.txt").read_text() == "hellohello"
    manifest = json.loads((first / MANIFEST_NAME).read_text())
    assert set(manifest["files"]) == set(FILES)
    assert manifest["params"] == {"n": 3, "size": 0.01}
    assert _no_leftovers(cache_root)


def test_key_depends_on_params_kind_and_generator_version(monkeypatch):
    base = cache_key("demo", {"size": 0.01})
    assert cache_key("demo", {"size": 0.02}) != base
    assert cache_key("other", {"size": 0.01}) != base
    assert cache_key("demo", {"size": np.float64(0.01)}) == base  # numpy scalars hash like floats
    monkeypatch.setattr(cache, "GENERATOR_VERSION", cache.GENERATOR_VERSION + 1)
    assert cache_key("demo", {"size": 0.01}) != base
    monkeypatch.setattr(cache.vt_refine, "__version__", "999.0")
    assert cache_key("demo", {"size": 0.01}) != base


def test_corrupt_file_is_rebuilt(cache_root):
    build = CountingBuild()
    folder = cached_build("demo", {}, build, FILES)
    (folder / "sub" / "b.txt").write_text("tampered")
    assert cached_build("demo", {}, build, FILES) == folder
    assert build.calls == 2
    assert (folder / "sub" / "b.txt").read_text() == "hellohello"
    assert _no_leftovers(cache_root)


def test_missing_file_is_rebuilt():
    build = CountingBuild()
    folder = cached_build("demo", {}, build, FILES)
    (folder / "a.txt").unlink()
    cached_build("demo", {}, build, FILES)
    assert build.calls == 2 and (folder / "a.txt").read_text() == "hello"


def test_deleted_manifest_is_rebuilt():
    build = CountingBuild()
    folder = cached_build("demo", {}, build, FILES)
    (folder / MANIFEST_NAME).unlink()
    cached_build("demo", {}, build, FILES)
    assert build.calls == 2 and (folder / MANIFEST_NAME).is_file()


@pytest.mark.parametrize("garbage", ["{not json", '{"files": 3}', '["a.txt"]', ""])
def test_unreadable_manifest_is_rebuilt(garbage):
    build = CountingBuild()
    folder = cached_build("demo", {}, build, FILES)
    (folder / MANIFEST_NAME).write_text(garbage)
    cached_build("demo", {}, build, FILES)
    assert build.calls == 2
    assert json.loads((folder / MANIFEST_NAME).read_text())["files"]["a.txt"]


def test_manifest_must_cover_every_requested_file():
    build = CountingBuild()
    cached_build("demo", {}, build, ["a.txt"])
    # same entry asked for one more file: the old manifest does not list it, so the entry is rebuilt
    cached_build("demo", {}, build, FILES)
    assert build.calls == 2


def test_failed_build_leaves_nothing_behind(cache_root):
    def broken(folder: Path) -> None:
        (folder / "a.txt").write_text("only one")

    with pytest.raises(AssetBuildError, match=r"did not write \['sub/b.txt'\]"):
        cached_build("demo", {}, broken, FILES)

    def crashing(folder: Path) -> None:
        (folder / "a.txt").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached_build("demo", {}, crashing, FILES)
    assert list(cache_root.iterdir()) == []


def test_bad_arguments_are_rejected():
    build = CountingBuild()
    with pytest.raises(AssetCacheError, match="kind"):
        cached_build("../escape", {}, build, FILES)
    with pytest.raises(AssetCacheError, match="JSON-serialisable"):
        cached_build("demo", {"mesh": object()}, build, FILES)
    with pytest.raises(AssetCacheError, match="JSON-serialisable"):
        cached_build("demo", {"size": float("nan")}, build, FILES)
    with pytest.raises(AssetCacheError, match="relative path"):
        cached_build("demo", {}, build, ["../outside.txt"])
    with pytest.raises(AssetCacheError, match="non-empty list"):
        cached_build("demo", {}, build, "a.txt")
    assert build.calls == 0


def test_race_loser_discards_its_copy(cache_root):
    """Another process installs the entry while this one builds: this one keeps the winner's folder."""
    winner = CountingBuild("winner")

    def slow_loser(folder: Path) -> None:
        cached_build("demo", {}, winner, FILES)  # the rival finishes first
        CountingBuild("loser")(folder)

    folder = cached_build("demo", {}, slow_loser, FILES)
    assert (folder / "a.txt").read_text() == "winner"
    assert winner.calls == 1
    assert _no_leftovers(cache_root)


def test_race_over_a_corrupt_entry(cache_root):
    """A corrupt entry is moved aside and replaced atomically."""
    build = CountingBuild()
    folder = cached_build("demo", {}, build, FILES)
    (folder / "a.txt").write_text("rotten")
    (folder / "extra.bin").write_bytes(b"junk")  # makes the folder non-empty in every case
    assert cached_build("demo", {}, build, FILES) == folder
    assert not (folder / "extra.bin").exists()  # the whole old folder was replaced
    assert _no_leftovers(cache_root)


def _race_worker(root: str, log: str, tag: str, barrier, results) -> None:
    import os
    import time

    os.environ["VT_REFINE_CACHE_DIR"] = root

    def build(folder: Path) -> None:
        (Path(log) / tag).write_text("built")  # one marker per build that ran
        time.sleep(0.2)  # keep every worker inside its build at once
        (folder / "a.txt").write_text("payload")
        (folder / "sub").mkdir()
        (folder / "sub" / "b.txt").write_text(tag)  # differs per worker: shows whose copy won

    barrier.wait()
    folder = cached_build("race", {"x": 1}, build, FILES)
    results.put((str(folder), (folder / "sub" / "b.txt").read_text()))


def test_concurrent_processes_agree_on_one_valid_entry(cache_root, tmp_path):
    ctx = multiprocessing.get_context("spawn")  # fork is unsafe once earlier tests have started threads
    log = tmp_path / "log"
    log.mkdir()
    workers = 4
    barrier, results = ctx.Barrier(workers), ctx.Queue()
    procs = [
        ctx.Process(target=_race_worker, args=(str(cache_root), str(log), f"p{i}", barrier, results))
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    # hang guards, not timings: four spawned interpreters import torch, which takes over 30 s on a busy 2-core machine
    outcomes = [results.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert len(list(log.iterdir())) >= 2  # the workers really raced (several builds ran)
    folders = {folder for folder, _ in outcomes}
    winners = {tag for _, tag in outcomes}
    assert len(folders) == 1 and len(winners) == 1  # everyone got the same, single winner's entry
    assert cache._is_valid(Path(folders.pop()), FILES)
    assert _no_leftovers(cache_root)  # the losers discarded their copies


def test_mesh_files_round_trip(cache_root):
    from vt_refine.assets.part_designs import make_assembly

    geometry = make_assembly("00186")
    plug_path, socket_path = mesh_files(geometry)
    assert plug_path.suffix == ".ply" and plug_path.parent == socket_path.parent
    plug = trimesh.load(plug_path, force="mesh")
    socket = trimesh.load(socket_path, force="mesh")
    # PLY stores float32 vertices: positions agree to ~1e-8 m
    np.testing.assert_allclose(plug.bounds, geometry.plug.bounds, atol=1e-8)
    assert socket.is_watertight and socket.volume == pytest.approx(geometry.socket.volume, rel=1e-6)
    assert len(socket.faces) == len(geometry.socket.faces)
    assert plug_path.read_bytes()[:20].startswith(b"ply\nformat binary")
    mtime = plug_path.stat().st_mtime_ns
    # same geometry (rebuilt): same entry, files untouched; another clearance: another entry
    assert mesh_files(make_assembly("00186")) == (plug_path, socket_path)
    assert plug_path.stat().st_mtime_ns == mtime
    assert mesh_files(make_assembly("00186", clearance=0.002))[1].parent != socket_path.parent
    obj_plug, _ = mesh_files(geometry, file_format="obj")
    assert obj_plug.suffix == ".obj" and trimesh.load(obj_plug, force="mesh").is_watertight
    with pytest.raises(AssetCacheError, match="file_format"):
        mesh_files(geometry, file_format="fbx")
