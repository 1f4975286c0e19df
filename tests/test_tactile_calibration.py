"""Kelvin-Voigt calibration: recovery of known constants from noisy synthetic data, CSV handling, CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vt_refine.sensors.piezo_tactile import (
    CalibrationFileNotFoundError,
    CalibrationFormatError,
    fit_from_indentation,
    fit_kelvin_voigt,
    load_calibration_csv,
)

REPO = Path(__file__).resolve().parents[1]
K_N, K_D = 850.0, 4.0  # [N/m], [N s/m]


def _dma_sweep(seed: int = 0, samples: int = 2000, noise: float = 0.01):
    """A DMA-like press: sinusoidal indentation 0..2 mm at several frequencies, force with 1 % noise."""
    rng = np.random.default_rng(seed)
    time = np.linspace(0.0, 8.0, samples)
    frequency = np.where(time < 4.0, 0.5, 2.0)  # [Hz] slow then fast cycles so k_d is identifiable
    phase = np.cumsum(2 * np.pi * frequency * np.gradient(time))
    depth = 1.0e-3 * (1.0 - np.cos(phase))
    rate = np.gradient(depth, time)
    force = np.clip(K_N * depth + K_D * rate, 0.0, None)
    force = force + noise * force.max() * rng.normal(size=samples)
    return time, depth, rate, force


def test_fit_recovers_known_constants_from_noisy_data():
    _, depth, rate, force = _dma_sweep()
    k_n, k_d, rmse = fit_kelvin_voigt(depth, rate, force)
    assert k_n == pytest.approx(K_N, rel=0.02)
    assert k_d == pytest.approx(K_D, rel=0.02)
    assert rmse == pytest.approx(0.01 * np.abs(force).max(), rel=0.3)  # the residual is the injected noise


def test_fit_from_indentation_with_and_without_time():
    time, depth, _, force = _dma_sweep(seed=1)
    k_n, k_d, _ = fit_from_indentation(depth, force, time=time)
    assert k_n == pytest.approx(K_N, rel=0.02) and k_d == pytest.approx(K_D, rel=0.02)
    quasi_static = np.linspace(0.0, 2e-3, 50)
    k_n_static, k_d_static, rmse = fit_from_indentation(quasi_static, 600.0 * quasi_static)
    assert k_n_static == pytest.approx(600.0, rel=1e-9) and k_d_static == 0.0 and rmse < 1e-9


def test_constants_are_non_negative():
    depth = np.linspace(1e-4, 1e-3, 20)
    k_n, k_d, _ = fit_kelvin_voigt(depth, np.full(20, 0.01), 500.0 * depth - 0.3)  # least squares wants k_d < 0
    assert k_d == 0.0 and k_n > 0.0


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "data.csv"
    path.write_text(text)
    return path


def test_csv_of_either_layout_loads(tmp_path):
    _, depth, rate, force = _dma_sweep(samples=200)
    rows = "\n".join(f"{d},{r},{f}" for d, r, f in zip(depth, rate, force))
    data = load_calibration_csv(_write(tmp_path, "Depth, depth_rate ,force\n" + rows + "\n"))
    assert data.kind == "kelvin_voigt" and np.allclose(data.columns["force"], force)
    data = load_calibration_csv(_write(tmp_path, "time,indentation,reading\n0,0,0\n1,0.001,0.9\n"))
    assert data.kind == "indentation" and set(data.columns) == {"indentation", "reading", "time"}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("a,b,c\n1,2,3\n4,5,6\n", "expected depth, depth_rate, force"),
        ("depth,depth_rate,force\n0.001,0,1\n0.002,x,2\n", "line 3, column 'depth_rate'"),
        ("indentation,reading\n0.001,1\n", "at least 2"),
        ("indentation,reading\n0.001,1\n0.002\n", "line 3, column 'reading'"),
    ],
)
def test_bad_csv_raises_a_clear_error(tmp_path, text, match):
    with pytest.raises(CalibrationFormatError, match=match):
        load_calibration_csv(_write(tmp_path, text))


def test_missing_csv_raises_file_not_found(tmp_path):
    with pytest.raises(CalibrationFileNotFoundError, match="not found") as info:
        load_calibration_csv(tmp_path / "nope.csv")
    assert isinstance(info.value, FileNotFoundError)


def _cli(*args):
    return subprocess.run([sys.executable, str(REPO / "scripts" / "calibrate_tactile.py"), *args],
                          capture_output=True, text=True, timeout=60)


def test_cli_prints_fit_and_plots(tmp_path):
    time, depth, _, force = _dma_sweep(samples=400)
    rows = "\n".join(f"{t},{d},{f}" for t, d, f in zip(time, depth, force))
    path = _write(tmp_path, "time,indentation,reading\n" + rows + "\n")
    result = _cli(str(path), "--plot", str(tmp_path / "fit.png"))
    assert result.returncode == 0, result.stderr
    assert '"k_n": 8' in result.stdout and (tmp_path / "fit.png").stat().st_size > 1000


@pytest.mark.parametrize("content", [None, "force,reading\n1,2\n3,4\n"])
def test_cli_bad_file_exits_2_with_one_line(tmp_path, content):
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_text(content)
    result = _cli(str(path))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert "bad.csv" in result.stderr
