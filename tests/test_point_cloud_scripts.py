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
