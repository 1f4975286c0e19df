"""Faults beyond kill -9: the disk filling up mid-write and a damaged newest checkpoint. Each test asserts that
nothing finished is lost and that rerunning the same step completes."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from test_data_hdf5 import EXPECTED, TASK, assert_episode_equal, sha, write  # the demo files' test helpers
from test_diffusion_trainer import PROFILE, Crash, crash_at, dataset  # and the tiny pre-training run's
from vt_refine.data.demo_writer import DemoWriter
from vt_refine.data.hdf5_dataset import DemoReader
from vt_refine.policies.diffusion import load_checkpoint, pretrain
from vt_refine.policies.diffusion import checkpoint as checkpoint_module

torch.set_num_threads(1)


def _disk_full(path: str = "") -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_disk_full_while_a_demo_is_appended_keeps_the_file_and_the_rerun_completes(tmp_path, monkeypatch):
    import vt_refine.data.demo_writer as hdf5_dataset

    path = tmp_path / "demos.hdf5"
    with DemoWriter(path, TASK, {}, EXPECTED) as writer:
        write(writer, 0, 5)
        write(writer, 1, 7)
    before = sha(path)

    real_copy = hdf5_dataset.shutil.copyfile

    def copy_then_fill_the_disk(src, dst):
        real_copy(src, dst)
        with open(dst, "ab") as f:  # part of the new episode reached the disk, then it was full
            f.write(b"\0" * 1000)
        raise _disk_full(str(dst))

    with DemoWriter(path, TASK, {}, EXPECTED) as writer:
        monkeypatch.setattr(hdf5_dataset.shutil, "copyfile", copy_then_fill_the_disk)
        with pytest.raises(OSError) as raised:
            write(writer, 2, 6)
        assert raised.value.errno == errno.ENOSPC
        assert sha(path) == before and _leftovers(tmp_path) == []  # the published file untouched, no temporary
        monkeypatch.setattr(hdf5_dataset.shutil, "copyfile", real_copy)
        write(writer, 2, 6)  # space freed: the same append goes through
    with DemoReader(path) as reader:
        assert len(reader) == 3
        for index, length in enumerate((5, 7, 6)):
            assert_episode_equal(reader, index, index, length)


def test_disk_full_while_a_checkpoint_is_written_keeps_the_previous_one(tmp_path, monkeypatch):
    with pytest.raises(Crash):
        pretrain(PROFILE, dataset(), tmp_path, progress=False, callback=crash_at(7))
    last = tmp_path / "checkpoints" / "last.pt"
    assert load_checkpoint(last)["step"] == 5

    real_save = checkpoint_module.torch.save

    def save_until_full(obj, f, *args, **kwargs):
        f.write(b"\0" * 4096)
        raise _disk_full()

    monkeypatch.setattr(checkpoint_module.torch, "save", save_until_full)
    with pytest.raises(OSError) as raised:
        pretrain(PROFILE, dataset(), tmp_path, progress=False)  # resumes at 5, fails writing step 10
    assert raised.value.errno == errno.ENOSPC
    assert _leftovers(tmp_path / "checkpoints") == []
    # the step-5 checkpoint survived (and was kept as previous.pt when the step-10 write began)
    kept = {p.name: load_checkpoint(p)["step"] for p in (tmp_path / "checkpoints").glob("*.pt")}
    assert kept == {"last.pt": 5, "previous.pt": 5}
    monkeypatch.setattr(checkpoint_module.torch, "save", real_save)
    done = pretrain(PROFILE, dataset(), tmp_path, progress=False)
    assert done.resumed_from == 5 and done.step == PROFILE.pretrain.total_steps


def test_a_damaged_newest_pretraining_checkpoint_resumes_from_the_one_before(tmp_path, capsys):
    full = pretrain(PROFILE, dataset(), tmp_path / "full", progress=False)
    with pytest.raises(Crash):
        pretrain(PROFILE, dataset(), tmp_path / "cut", progress=False, callback=crash_at(11))
    checkpoints = tmp_path / "cut" / "checkpoints"
    assert load_checkpoint(checkpoints / "last.pt")["step"] == 10
    last = checkpoints / "last.pt"
    last.write_bytes(last.read_bytes()[:2000])  # the disk (or a copy) damaged the newest file
    resumed = pretrain(PROFILE, dataset(), tmp_path / "cut", progress=False)
    assert "skipping checkpoint" in capsys.readouterr().out
    assert resumed.resumed_from == 5 and resumed.step == 12
    np.testing.assert_allclose(resumed.losses, full.losses[5:], rtol=1e-5)


def test_only_damaged_checkpoints_get_a_clear_error(tmp_path):
    from vt_refine.policies.diffusion import CheckpointError

    with pytest.raises(Crash):
        pretrain(PROFILE, dataset(), tmp_path, progress=False, callback=crash_at(7))
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="no readable checkpoint .* delete them to start over"):
        pretrain(PROFILE, dataset(), tmp_path, progress=False)


def test_a_damaged_newest_dppo_checkpoint_resumes_from_the_one_before(tmp_path, capsys):
    from vt_refine.app.finetune import _newest_runner_checkpoint

    for iteration in (1, 2):
        torch.save({"dppo_iteration": iteration, "actor_state_dict": {}}, tmp_path / f"model_{iteration}.pt")
    good = (tmp_path / "model_2.pt").read_bytes()
    (tmp_path / "model_3.pt").write_bytes(good[: len(good) // 2])
    path, done = _newest_runner_checkpoint(tmp_path)
    assert (path.name, done) == ("model_2.pt", 2)
    assert "skipping unreadable model_3.pt" in capsys.readouterr().out


def test_disk_full_reaches_the_user_as_one_line(monkeypatch, capsys):
    import vt_refine.app.cli as cli

    def fill(args):
        raise _disk_full("/runs/p/checkpoints/.last.pt.x.tmp")

    monkeypatch.setattr(cli, "_dispatch", fill)
    code = cli.main(["pretrain", "--dataset", "d.hdf5", "--output", "/runs/p"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "no space left on the device" in err[0] and "rerun the same command" in err[0]
