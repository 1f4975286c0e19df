"""The app's one checkpoint type: a file opened once into its kind, task and contents; one-line errors."""

from __future__ import annotations

import pytest
import torch
from policy_fixtures import SyntheticChunkDataset, tiny_policy_cfg

from vt_refine.app.checkpoint import FINETUNED, PRETRAINED, Checkpoint
from vt_refine.policies.diffusion import DiffusionPolicy, save_checkpoint
from vt_refine.task_ids import Modality
from vt_refine.utils.errors import UserError

TASK = "VTRefine-PegInHole-Aloha"


def _pretrained(path, task=TASK):
    cfg = tiny_policy_cfg()
    policy = DiffusionPolicy.from_stats(cfg, SyntheticChunkDataset.from_cfg(cfg, 4).stats())
    return save_checkpoint(path, policy, task_id=task)


def test_a_pretrained_file_is_read_once_into_its_kind_task_and_contents(tmp_path, monkeypatch):
    path = _pretrained(tmp_path / "final.pt")
    reads = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: reads.append(a[0]) or real_load(*a, **k))
    ckpt = Checkpoint.open(path)
    assert (ckpt.kind, ckpt.task, ckpt.modality) == (PRETRAINED, TASK, Modality.VT)
    assert ckpt.pretrained is ckpt.payload and ckpt.pretrained_path == path
    assert len(reads) == 1  # opened once
    assert ckpt.check_task(TASK) is ckpt
    with pytest.raises(UserError, match=f"trained on {TASK} but the task is {TASK}-Visual"):
        ckpt.check_task(f"{TASK}-Visual")


def test_a_finetuned_file_brings_its_pretrained_source_and_refuses_a_missing_one(tmp_path):
    source = _pretrained(tmp_path / "final.pt")
    meta = {"pretrained_checkpoint": str(source), "task_id": TASK, "obs_group": "policy", "actor_cfg": {}}
    torch.save({"actor_state_dict": {}, "actor_optimizer_state_dict": {}, "vt_refine_dppo": meta},
               tmp_path / "model_3.pt")
    ckpt = Checkpoint.open(tmp_path / "model_3.pt")
    assert (ckpt.kind, ckpt.task, ckpt.pretrained_path) == (FINETUNED, TASK, source)
    assert ckpt.pretrained["task_id"] == TASK
    source.unlink()
    with pytest.raises(UserError, match="was fine-tuned from .*final.pt, which cannot be read"):
        Checkpoint.open(tmp_path / "model_3.pt")
    torch.save({"actor_optimizer_state_dict": {}}, tmp_path / "old.pt")
    with pytest.raises(UserError, match="without the record of its pre-trained policy"):
        Checkpoint.open(tmp_path / "old.pt")


def test_missing_folder_and_corrupt_files_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        Checkpoint.open(tmp_path / "nope.pt")
    with pytest.raises(UserError, match="is a folder"):
        Checkpoint.open(tmp_path)
    path = _pretrained(tmp_path / "final.pt")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(UserError, match="corrupt or incomplete"):
        Checkpoint.open(path)
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(UserError, match="not a vt_refine checkpoint"):
        Checkpoint.open(tmp_path / "list.pt")
