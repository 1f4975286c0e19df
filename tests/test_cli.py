"""User-facing commands: the task list, clear one-line errors for bad input, Isaac Lab's own CLI."""

import json
import os
import subprocess
import sys

import pytest
import torch

PY = sys.executable
ISAACLAB = os.path.join(os.path.dirname(sys.executable), "isaaclab")  # the venv's console script


def run(args, cwd=None, timeout=600):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env)


def test_tasks_lists_the_five_assemblies():
    out = run([PY, "-m", "vt_refine.app.cli", "tasks"])
    assert out.returncode == 0, out.stderr
    for name in ("PegInHole", "NutBolt", "Bayonet", "Connector", "ShaftCollar"):
        assert f"VTRefine-{name}-Aloha" in out.stdout.split()


def test_unknown_task_lists_the_known_ones():
    out = run([PY, "-m", "vt_refine.app.cli", "benchmark", "--task", "VTRefine-PegInHol-Aloha", "--num_envs", "1"])
    assert out.returncode == 2
    assert "unknown task 'VTRefine-PegInHol-Aloha'" in out.stderr
    assert "Did you mean VTRefine-PegInHole-Aloha" in out.stderr and "VTRefine-Bayonet-Aloha" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without a GPU")
def test_cuda_without_gpu_says_use_cpu():
    out = run([PY, "-m", "vt_refine.app.cli", "benchmark", "--device", "cuda:0", "--num_envs", "1"])
    assert out.returncode == 2
    assert "--device cpu" in out.stderr and "Traceback" not in out.stderr


def test_negative_counts_are_rejected_by_the_parser():
    out = run([PY, "-m", "vt_refine.app.cli", "benchmark", "--num_envs", "-3"])
    assert out.returncode == 2 and "expected a number >= 1" in out.stderr and "Traceback" not in out.stderr


def test_missing_python312_says_how_to_get_it(repo_root, tmp_path):
    out = subprocess.run(["bash", str(repo_root / "tools" / "venv.sh")], capture_output=True, text=True,
                         env={**os.environ, "PYTHON": str(tmp_path / "no-python")}, cwd=tmp_path)
    assert out.returncode != 0
    assert "not a Python 3.12 interpreter" in out.stderr


@pytest.mark.sim
def test_isaaclab_list_envs_shows_the_tasks():
    out = run([ISAACLAB, "list_envs"], timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    for name in ("PegInHole", "NutBolt", "Bayonet", "Connector", "ShaftCollar"):
        assert f"VTRefine-{name}-Aloha" in out.stdout


@pytest.mark.sim
def test_isaaclab_train_then_play_on_cpu(tmp_path):
    train = run([ISAACLAB, "train", "--task", "VTRefine-PegInHole-Aloha", "--device", "cpu", "--num_envs", "2",
                 "--max_iterations", "2"], cwd=tmp_path)
    assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
    checkpoints = list((tmp_path / "logs" / "rsl_rl").rglob("model_*.pt"))
    assert checkpoints, "training wrote no checkpoint"
    # play runs until stopped: give it time to load the checkpoint and start, then stop it
    proc = subprocess.Popen([ISAACLAB, "play", "--task", "VTRefine-PegInHole-Aloha", "--device", "cpu",
                             "--num_envs", "2"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if "playback is running" in line:
                break
    finally:
        proc.kill()
        proc.wait()
    text = "".join(lines)
    assert "Loading model checkpoint" in text and "playback is running" in text, text[-3000:]


@pytest.mark.sim
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without a GPU")
def test_isaaclab_train_without_device_flag_says_use_cpu(tmp_path):
    out = run([ISAACLAB, "train", "--task", "VTRefine-PegInHole-Aloha", "--num_envs", "1", "--max_iterations", "1"],
              cwd=tmp_path)
    assert out.returncode != 0
    assert "Rerun with --device cpu" in out.stdout + out.stderr
    # the run folder Isaac Lab's train made before the env refused is gone, so `isaaclab play` cannot pick it
    assert not (tmp_path / "logs").exists(), sorted(str(p) for p in (tmp_path / "logs").rglob("*"))


@pytest.mark.sim
def test_benchmark_floor_splits_the_env_step_and_compares_it_with_the_physics_alone(tmp_path):
    out = run([PY, "-m", "vt_refine.app.cli", "benchmark", "--num_envs", "2", "--steps", "3", "--floor",
               "--output", str(tmp_path / "floor.json")], timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    row = json.loads((tmp_path / "floor.json").read_text())["results"][0]
    assert row["num_envs"] == 2 and row["floor_env_steps_per_s"] > 0 and 0 < row["ratio_env_to_floor"] < 1.5
    split = row["split_ms_per_control_step"]
    for part in ("physics", "action", "scene_update", "tactile_sensor", "camera", "observations",
                 "rewards_terminations", "other"):
        assert part in split, part
    assert split["physics"] > 0 and split["tactile_sensor"] > 0 and split["camera"] > 0
    # the parts add up to the measured env step
    assert sum(split.values()) == pytest.approx(row["env_ms_per_control_step"], rel=0.02)


@pytest.mark.parametrize("command", ["collect --num_demos 2 --output x.hdf5", "evaluate --checkpoint x.pt",
                                     "pretrain --dataset x.hdf5 --output p", "benchmark --num_envs 1"])
def test_an_unknown_task_is_refused_before_any_heavy_import(command, tmp_path):
    """One line on stderr (no Warp banner), exit code 2, and neither Isaac Lab, Warp nor torch imported."""
    code = ("import sys; from vt_refine.app.cli import main; rc = main(sys.argv[1:]); "
            "print(rc, *(m in sys.modules for m in ('isaaclab', 'warp', 'torch')))")
    out = subprocess.run([PY, "-c", code, *command.split(), "--task", "VTRefine-Nope-Aloha"], capture_output=True,
                         text=True, cwd=tmp_path)
    assert out.stdout.split() == ["2", "False", "False", "False"], out
    assert len(out.stderr.strip().splitlines()) == 1 and "unknown task 'VTRefine-Nope-Aloha'" in out.stderr


def test_help_shows_defaults_dashed_aliases_work_and_abbreviations_do_not():
    from vt_refine.app.cli import build_parser

    parser = build_parser()
    help_text = parser._subparsers._group_actions[0].choices["evaluate"].format_help()
    assert "(default: 16)" in help_text and "(default: 0)" in help_text and "--num-episodes" not in help_text
    assert "VT-Refine on the ALOHA twin" in parser.format_help()
    args = parser.parse_args(["evaluate", "--checkpoint", "x.pt", "--num-episodes", "3", "--num_envs", "2"])
    assert (args.num_episodes, args.num_envs) == (3, 2)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["evaluate", "--checkpoint", "x.pt", "--num_ep", "3"])
    assert exit_info.value.code == 2
