"""Reliability of the user-facing commands, run as a user runs them (``python -m vt_refine.app.cli ...``):

- ``kill -9`` in the middle of pre-training, fine-tuning and demo collection, then the same command again: it
  resumes from the last checkpoint / the last complete demo, ends with the asked-for number of steps,
  iterations or demos, and leaves no half-written file;
- determinism on the CPU: the same seed gives bit-identical demos and the same evaluation result.

Small settings throughout (tiny networks, 2 envs, a handful of iterations); each command is a subprocess, so one
Isaac Lab simulation per process as Isaac Lab expects.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

PY = sys.executable
TASK = "VTRefine-PegInHole-Aloha"

# a tiny profile: the policy and pretrain sections for the pre-training test, the finetune section for DPPO
TINY_PROFILE = """
policy:
  obs_steps: 2
  use_point_cloud: {use_point_cloud}
  num_points: 8
  point_channels: 5
  joint_dim: 16
  horizon_steps: 16
  act_steps: 8
  action_dim: 16
  sampler: ddim
  point_encoder: {{hidden_dims: [8], out_dim: 8}}
  state_encoder: {{hidden_dims: [16]}}
  unet: {{down_dims: [16, 32], kernel_size: 3, n_groups: 8, diffusion_step_embed_dim: 8}}
  diffusion: {{denoising_steps: 10, ddim_steps: 5}}
pretrain:
  total_steps: {total_steps}
  batch_size: 4
  warmup_steps: 2
  checkpoint_every: 20
  log_every: 20
finetune:
  num_steps_per_env: 16
  save_interval: 1
  actor: {{sampler: ddim, ft_denoising_steps: 5}}
  algorithm: {{mini_batch_size: 16, num_learning_epochs: 1}}
"""


def write_profile(path: Path, total_steps: int = 200, use_point_cloud: bool = True) -> Path:
    path.write_text(TINY_PROFILE.format(total_steps=total_steps, use_point_cloud=str(use_point_cloud).lower()))
    return path


def cli(*args: str) -> list[str]:
    return [PY, "-m", "vt_refine.app.cli", *args]


def run(args: list[str], timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)


def kill_when(args: list[str], ready, timeout: float = 600, extra_wait: float = 0.0) -> None:
    """Start ``args`` and SIGKILL it once ``ready()`` holds (plus ``extra_wait`` seconds): no clean-up runs."""
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if proc.poll() is not None:
                pytest.fail(f"{args[3]} ended (rc {proc.returncode}) before it could be killed: "
                            f"{proc.stderr.read()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"{args[3]} never reached the point to kill it at")
            time.sleep(0.05)
        time.sleep(extra_wait)
        assert proc.poll() is None, "finished before the kill: the test must kill it mid-run"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def leftovers(folder: Path) -> list[str]:
    """Temporary files of an interrupted atomic write (none may survive a rerun)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name.endswith(".tmp"))


def synthetic_demos(path: Path, episodes: int = 4, length: int = 30) -> Path:
    from vt_refine.data.demo_writer import DemoWriter

    rng = np.random.default_rng(0)
    expected = {"actions": ((16,), "float32"), "obs/joint_pos": ((16,), "float32"),
                "obs/point_cloud": ((8, 5), "float32")}
    with DemoWriter(path, TASK, {}, expected) as writer:
        for e in range(episodes):
            joints = np.cumsum(rng.normal(0, 0.01, (length, 16)), axis=0).astype(np.float32)
            cloud = rng.uniform(-0.1, 0.1, (length, 8, 5)).astype(np.float32)
            writer.append_episode({"joint_pos": joints, "point_cloud": cloud}, np.tanh(joints), success=True, seed=e)
    return path


def tiny_joint_policy_checkpoint(path: Path) -> Path:
    """An untrained joints-only diffusion policy of the task's shapes, as pre-training would save it."""
    from vt_refine.policies.diffusion import (DiffusionCfg, DiffusionPolicy, DiffusionPolicyCfg, StateEncoderCfg,
                                              UnetCfg, save_checkpoint)

    cfg = DiffusionPolicyCfg(
        use_point_cloud=False, joint_dim=16, action_dim=16, obs_steps=2, horizon_steps=16, act_steps=8,
        state_encoder=StateEncoderCfg(hidden_dims=(32, 32)),
        unet=UnetCfg(down_dims=(16, 32), kernel_size=3, diffusion_step_embed_dim=16),
        diffusion=DiffusionCfg(denoising_steps=10, ddim_steps=5),
    )
    torch.manual_seed(0)
    stats = {"actions": {"min": -0.1 * np.ones(16), "max": 0.1 * np.ones(16)},
             "joint_pos": {"min": -np.ones(16), "max": np.ones(16)}}
    return save_checkpoint(path, DiffusionPolicy.from_stats(cfg, stats), task_id=TASK)


# ------------------------------------------------------------------------------------------------ kill -9
def test_pretraining_killed_twice_resumes_and_ends_at_the_asked_steps(tmp_path):
    from vt_refine.policies.diffusion import load_checkpoint

    data = synthetic_demos(tmp_path / "demos.hdf5")
    profile = write_profile(tmp_path / "tiny.yaml", total_steps=200)
    out = tmp_path / "pretrain"
    args = cli("pretrain", "--task", TASK, "--dataset", str(data), "--profile", str(profile), "--output", str(out),
               "--device", "cpu")
    last = out / "checkpoints" / "last.pt"
    kill_when(args, last.exists)  # right after the first checkpoint (often while the next one is written)
    first = load_checkpoint(last)["step"]
    assert 20 <= first < 200
    kill_when(args, lambda: last.exists() and load_checkpoint(last)["step"] > first, extra_wait=0.3)
    second = load_checkpoint(last)["step"]
    assert first < second < 200
    done = run(args)
    assert done.returncode == 0, done.stderr[-3000:]
    assert load_checkpoint(out / "checkpoints" / "final.pt")["step"] == 200
    assert f"resuming from step {second}" in done.stdout + done.stderr
    assert leftovers(out) == []


@pytest.mark.sim
def test_finetuning_killed_after_an_iteration_resumes_to_the_asked_iterations(tmp_path):
    profile = write_profile(tmp_path / "tiny.yaml", use_point_cloud=False)
    checkpoint = tiny_joint_policy_checkpoint(tmp_path / "final.pt")
    out = tmp_path / "finetune"
    args = cli("finetune", "--task", TASK, "--checkpoint", str(checkpoint), "--num_envs", "2", "--max_iterations",
               "3", "--profile", str(profile), "--output", str(out), "--device", "cpu")
    kill_when(args, lambda: (out / "model_0.pt").exists(), timeout=600)  # one DPPO update saved
    assert not (out / "model_3.pt").exists()
    done = run(args)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    final = torch.load(out / "model_3.pt", map_location="cpu", weights_only=False)
    assert final["dppo_iteration"] == 3  # 1 before the kill + 2 after: the asked 3, not 1 + 3
    assert torch.load(out / "model_0.pt", map_location="cpu", weights_only=False)["dppo_iteration"] == 1
    assert leftovers(out) == []


def _episodes(path: Path) -> int:
    from vt_refine.data.hdf5_dataset import DemoReader

    if not path.exists():
        return 0
    try:
        with DemoReader(path) as reader:
            return reader.num_episodes()
    except Exception:  # noqa: BLE001  (never half-written, but the writer may be publishing the next one)
        return 0


@pytest.mark.sim
def test_collection_killed_mid_run_keeps_its_demos_and_completes_the_count(tmp_path):
    from vt_refine.data.hdf5_dataset import DemoReader

    path = tmp_path / "demos.hdf5"
    args = cli("collect", "--task", TASK, "--num_demos", "4", "--num_envs", "2", "--output", str(path),
               "--device", "cpu")
    kill_when(args, lambda: _episodes(path) >= 1, timeout=600)
    kept = _episodes(path)
    assert 1 <= kept < 4
    done = run(args)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with DemoReader(path) as reader:
        assert reader.num_episodes() == 4 and reader.task == TASK
        for e in range(4):  # every episode complete and readable
            assert np.isfinite(reader.read(e, "actions")).all()
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------- determinism
def _hdf5_contents(path: Path) -> dict:
    contents = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            contents[name] = obj[()]
    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return contents


@pytest.mark.sim
def test_same_seed_gives_the_same_demos_and_the_same_evaluation(tmp_path):
    files = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.hdf5"
        out = run(cli("collect", "--task", TASK, "--num_demos", "1", "--num_envs", "1", "--seed", "5",
                      "--output", str(path), "--device", "cpu", "--keep_failed"))
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        files.append(_hdf5_contents(path))
    assert files[0].keys() == files[1].keys() and any(k.endswith("actions") for k in files[0])
    for key, value in files[0].items():
        np.testing.assert_array_equal(files[1][key], value, err_msg=key)

    checkpoint = tiny_joint_policy_checkpoint(tmp_path / "final.pt")
    results = []
    for name in ("a", "b"):
        out = run(cli("evaluate", "--task", TASK, "--checkpoint", str(checkpoint), "--num_episodes", "1",
                      "--num_envs", "1", "--seed", "11", "--output", str(tmp_path / f"{name}.json"), "--device", "cpu"))
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        results.append(json.loads((tmp_path / f"{name}.json").read_text()))
    for result in results:
        result.pop("seconds")
    assert results[0] == results[1]


@pytest.mark.sim
def test_dagger_round_runs_the_policy_records_the_expert_and_is_seeded(tmp_path):
    """`collect --dagger_policy` with beta 0: the policy (untrained, its actions within +-0.1) drives every step,
    the file records the expert's labels (which reach beyond +-0.1), keeps the failed episode, says what made it,
    and the same seed gives the same file."""
    from vt_refine.assets.aloha import joint_to_action_map
    from vt_refine.data.hdf5_dataset import DemoReader

    checkpoint = tiny_joint_policy_checkpoint(tmp_path / "final.pt")
    files = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.hdf5"
        out = run(cli("collect", "--task", TASK, "--num_demos", "1", "--num_envs", "1", "--seed", "5", "--output",
                      str(path), "--device", "cpu", "--dagger_policy", str(checkpoint), "--dagger_beta", "0"))
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        files.append(_hdf5_contents(path))
    for key, value in files[0].items():
        np.testing.assert_array_equal(files[1][key], value, err_msg=key)
    with DemoReader(tmp_path / "a.hdf5") as reader:
        assert reader.num_episodes() == 1
        labels = reader.read(0, "actions")
        joints = reader.read(0, "obs/joint_pos")
        assert reader.env_args["dagger_beta"] == 0.0 and reader.env_args["dagger_policy"].endswith("final.pt")
    assert np.abs(labels).max() > 0.5  # the expert's reach, not the policy's +-0.1
    # the arms went where the policy sent them, not where the labels say (the expert's own run ends on its targets)
    scale, offset = (np.array(row) for row in joint_to_action_map())
    arms = np.r_[0:6, 8:14]
    assert np.abs(scale * joints[-1] + offset - labels[-1])[arms].max() > 0.2


def test_unstarted_run_folder_goes_with_its_empty_parents_up_to_logs_only(tmp_path):
    from vt_refine.tasks.assembly.assembly_env_cfg import _remove_unstarted_run_folder

    run = tmp_path / "work" / "logs" / "rsl_rl" / "exp" / "2026-12-07_03-00-00"
    run.mkdir(parents=True)
    (run / "run.json").write_text("{}")
    _remove_unstarted_run_folder(str(run))
    assert not (tmp_path / "work" / "logs").exists() and (tmp_path / "work").is_dir()  # empty folders above stay

    elsewhere = tmp_path / "runs" / "mine"  # a log dir outside any logs/ folder: only the run folder goes
    elsewhere.mkdir(parents=True)
    (elsewhere / "run.json").write_text("{}")
    _remove_unstarted_run_folder(str(elsewhere))
    assert not elsewhere.exists() and (tmp_path / "runs").is_dir()

    started = tmp_path / "logs" / "rsl_rl" / "exp" / "run2"  # a run that wrote anything else is kept
    started.mkdir(parents=True)
    (started / "run.json").write_text("{}")
    (started / "model_0.pt").write_bytes(b"x")
    _remove_unstarted_run_folder(str(started))
    assert (started / "model_0.pt").is_file()
