"""The observation scripts run end to end (each in its own process: one simulation per process)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.sim


def _run(repo_root, *args, timeout=300):
    proc = subprocess.run([sys.executable, *args], cwd=repo_root, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def test_show_obs_writes_the_cloud_and_depth_pngs(repo_root, tmp_path):
    from PIL import Image

    out = tmp_path / "obs.png"
    _run(repo_root, "scripts/show_obs.py", "--steps", "2", "--device", "cpu", "--out", str(out))
    for path in (out, tmp_path / "obs_depth.png"):
        with Image.open(path) as image:
            assert image.format == "PNG" and min(image.size) > 200


def test_benchmark_obs_prints_costs_per_source(repo_root):
    stdout = _run(repo_root, "scripts/benchmark_obs.py", "--num_envs", "2", "--steps", "2", "--warmup", "1",
                  "--sources", "mesh", "--device", "cpu")
    result = json.loads(stdout[stdout.index("{"):])["results"][0]
    assert result["source"] == "mesh" and result["num_envs"] == 2
    assert result["step_ms"] > result["cloud_ms"] > 0 and 0 < result["cloud_share"] < 1 and result["render_ms"] == 0


def test_benchmark_tactile_prints_model_floor_and_env_step_split(repo_root):
    stdout = _run(repo_root, "scripts/benchmark_tactile.py", "--envs", "1", "--repeats", "2", "--env-step-envs", "2",
                  "--env-step-steps", "3")
    report = json.loads(stdout)  # stdout is the JSON alone: Isaac Lab's banners go to stderr
    near, far = report["results"]
    assert (near["targets"], far["targets"]) == ("near", "far")
    assert near["taxels_in_contact"] > 0 and far["taxels_in_contact"] == 0
    assert near["compute_ms"] > 0 and near["mesh_query_floor_ms"] > 0
    split = report["env_step"]
    assert split["num_envs"] == 2 and split["sensor_updates"] == 3
    assert 0 < split["sensor_update_ms"] < split["env_step_ms"]
    assert split["env_step_without_sensor_ms"] == pytest.approx(split["env_step_ms"] - split["sensor_update_ms"], abs=0.02)
