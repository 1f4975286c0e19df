"""scripts/open_loop_error.py scores a checkpoint's chunks against its demo windows (no simulation)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

TASK = "VTRefine-PegInHole-Aloha"
STEPS, TA, TE = 20, 16, 8


@pytest.fixture(scope="module")
def script(repo_root):
    spec = importlib.util.spec_from_file_location("open_loop_error", repo_root / "scripts" / "open_loop_error.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from vt_refine.data.hdf5_dataset import DemoWriter
    from vt_refine.policies.diffusion import (DiffusionCfg, DiffusionPolicy, DiffusionPolicyCfg, PointEncoderCfg,
                                              StateEncoderCfg, UnetCfg, save_checkpoint)

    root = tmp_path_factory.mktemp("open_loop")
    expected = {"actions": ((16,), "float32"), "obs/joint_pos": ((16,), "float32"),
                "obs/point_cloud": ((8, 5), "float32")}
    ramp = np.repeat(np.linspace(-1.0, 1.0, STEPS, dtype=np.float32)[:, None], 16, axis=1)  # action t: the same ramp
    with DemoWriter(root / "demos.hdf5", TASK, {}, expected) as writer:
        for episode in range(2):
            writer.append_episode({"joint_pos": ramp.copy(), "point_cloud": np.zeros((STEPS, 8, 5), np.float32)},
                                  ramp.copy(), success=True, seed=episode)
    cfg = DiffusionPolicyCfg(num_points=8, point_encoder=PointEncoderCfg(hidden_dims=(8,), out_dim=8),
                             state_encoder=StateEncoderCfg(hidden_dims=(16,)),
                             unet=UnetCfg(down_dims=(16, 32), kernel_size=3, diffusion_step_embed_dim=8),
                             diffusion=DiffusionCfg(denoising_steps=10, ddim_steps=5))
    stats = {"actions": {"min": -np.ones(16), "max": np.ones(16)}, "joint_pos": {"min": -np.ones(16), "max": np.ones(16)}}
    checkpoint = save_checkpoint(root / "policy.pt", DiffusionPolicy.from_stats(cfg, stats), task_id=TASK)
    return root / "demos.hdf5", checkpoint


def _repeat_first_error(windows: np.ndarray) -> float:
    """Mean |a_{t+j} - a_t| over j < Te for the ramp, windows padded with the last action past the end."""
    ramp = np.linspace(-1.0, 1.0, STEPS)
    errors = [abs(ramp[min(t + j, STEPS - 1)] - ramp[t]) for t in windows for j in range(TE)]
    return float(np.mean(errors))


def test_prints_errors_per_sampler_and_the_references(script, files, capsys):
    demos, checkpoint = files
    assert script.main([str(checkpoint), str(demos), "--samplers", "ddim", "ddpm", "--windows", "400"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["mean_abs_error"]) == {"ddim", "ddpm"} and report["executed_steps"] == TE
    for value in report["mean_abs_error"].values():
        assert 0.0 < value < 2.0  # an untrained policy: some error, inside the [-1, 1] box
    # 400 uniform windows over the 40 steps: the references approach their exact values over all windows
    exact = _repeat_first_error(np.arange(STEPS))
    assert report["reference_repeat_first_action"] == pytest.approx(exact, abs=0.03)
    assert report["reference_mean_action"] == pytest.approx(0.5, abs=0.05)  # mean |ramp| of a centred ramp


def test_a_checkpoint_of_another_shape_is_a_clear_error(script, files, tmp_path, capsys):
    demos, _ = files
    assert script.main([str(tmp_path / "missing.pt"), str(demos)]) == 2
    assert "missing.pt" in capsys.readouterr().err
