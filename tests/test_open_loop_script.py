"""The open-loop error per phase in mm (vt_refine.app.open_loop) and scripts/open_loop_error.py (no simulation)."""

from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pytest
import torch

TASK = "VTRefine-PegInHole-Aloha"
STEPS, TE = 40, 8


@pytest.fixture(scope="module")
def script(repo_root):
    spec = importlib.util.spec_from_file_location("open_loop_error", repo_root / "scripts" / "open_loop_error.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _limits():
    from vt_refine.assets.aloha import ALOHA_JOINT_NAMES, joint_limits

    limits = joint_limits()
    lo = torch.tensor([limits[n][0] for n in ALOHA_JOINT_NAMES], dtype=torch.float64)
    hi = torch.tensor([limits[n][1] for n in ALOHA_JOINT_NAMES], dtype=torch.float64)
    return lo, hi


def test_pad_centre_error_of_a_known_joint_offset():
    """Turning the left waist by d rad moves the left pad centre along a chord 2 r sin(d / 2) (r: its distance
    from the waist axis); the right arm and the fingers stay put; a 1 mm finger offset reads 1 mm."""
    from vt_refine.app.open_loop import chunk_errors_mm, pad_centres

    lo, hi = _limits()
    torch.manual_seed(0)
    demo = (torch.rand(4, 16, 16, dtype=torch.float64) - 0.5) * 0.4  # near the middle of every range
    delta = 0.01  # rad
    predicted = demo.clone()
    predicted[..., 0] += 2 * delta / float(hi[0] - lo[0])  # left waist, in action units
    errors = chunk_errors_mm(predicted, demo, TE, lo, hi)
    left, _, _ = pad_centres(demo[:, :TE], lo, hi)
    from vt_refine.assets.kinematics import BASE_POSES

    axis_xy = torch.tensor(BASE_POSES["left"][0][:2], dtype=torch.float64)
    radius = (left[..., :2] - axis_xy).norm(dim=-1)  # (B, Te)
    expected = 1000 * (2 * radius * math.sin(delta / 2)).mean(-1)
    torch.testing.assert_close(errors["left"], expected, rtol=1e-6, atol=1e-6)
    assert float(errors["right"].abs().max()) < 1e-9 and float(errors["fingers"].abs().max()) < 1e-9
    fingers = demo.clone()
    fingers[..., 14] += 2 * 0.001 / float(hi[14] - lo[14])  # right finger 1 mm further open
    finger_errors = chunk_errors_mm(fingers, demo, TE, lo, hi)["fingers"]
    torch.testing.assert_close(finger_errors, torch.full((4,), 0.5, dtype=torch.float64))  # 1 mm on one of two


def test_holding_the_observed_joints_scores_zero_on_a_still_demo_and_the_offset_on_a_moved_one():
    from vt_refine.app.open_loop import hold_errors_mm

    lo, hi = _limits()
    torch.manual_seed(1)
    still = ((torch.rand(3, 1, 16, dtype=torch.float64) - 0.5) * 0.4).expand(3, 16, 16)  # one target held
    joints = lo + (still[:, 0] + 1.0) * 0.5 * (hi - lo)  # the joints that target commands [rad, m]
    errors = hold_errors_mm(joints, still, TE, lo, hi)
    assert all(float(v.abs().max()) < 1e-9 for v in errors.values())
    opened = joints.clone()
    opened[:, 6] += 0.002  # the left finger 2 mm further out than the demo holds it
    torch.testing.assert_close(hold_errors_mm(opened, still, TE, lo, hi)["fingers"],
                               torch.full((3,), 1.0, dtype=torch.float64))  # 2 mm on one of two openings


def test_several_noises_split_the_miss_into_the_mean_chunks_bias_and_the_spread_around_it():
    """A policy whose chunks are the demo's with the left finger 2 mm out for even noise seeds and 2 mm in for odd
    ones: each chunk misses by 1 mm (2 mm on one of two openings), their mean not at all, the spread is 1 mm."""
    from types import SimpleNamespace

    from vt_refine.app.open_loop import open_loop_report
    from vt_refine.expert.scripted_expert import PHASES

    lo, hi = _limits()
    offset = 2 * 0.002 / float(hi[6] - lo[6])  # 2 mm of the left finger, in action units

    class TwoSidedPolicy:
        cfg = SimpleNamespace(act_steps=TE)

        def predict_chunk(self, obs, sampler, deterministic, generator):
            chunk = obs["demo_chunk"].clone()
            chunk[..., 6] += offset if generator.initial_seed() % 2 == 0 else -offset
            return chunk

    torch.manual_seed(2)
    chunks = (torch.rand(6, 16, 16, dtype=torch.float64) - 0.5) * 0.4
    dataset = [{"obs": {"demo_chunk": c, "joint_pos": torch.zeros(2, 16, dtype=torch.float64)}, "actions": c}
               for c in chunks]
    phases = torch.full((6,), PHASES.index("align"))
    entry = open_loop_report(TwoSidedPolicy(), dataset, phases, windows_per_phase=6, noises=2)["phases"]["align"]
    assert entry["ddim"]["fingers"] == pytest.approx(1.0) and entry["ddim"]["left"] == pytest.approx(0.0, abs=1e-6)
    assert entry["ddim_mean_of_2_noises"]["fingers"] == pytest.approx(0.0, abs=1e-6)
    assert entry["ddim_spread_around_it"]["fingers"] == pytest.approx(1.0)
    single = open_loop_report(TwoSidedPolicy(), dataset, phases, windows_per_phase=6)["phases"]["align"]
    assert "ddim_spread_around_it" not in single and single["ddim"] == entry["ddim"]


def test_follow_slopes_are_one_for_the_demos_own_chunks_and_zero_for_their_mean():
    from vt_refine.app.open_loop import follow_slopes

    lo, hi = _limits()
    torch.manual_seed(3)
    demo = (torch.rand(8, 16, 16, dtype=torch.float64) - 0.5) * 0.4
    for side, slopes in follow_slopes(demo, demo, TE, lo, hi).items():
        assert slopes == pytest.approx([1.0, 1.0, 1.0]), side
    mean = demo.mean(0, keepdim=True).expand_as(demo)
    for side, slopes in follow_slopes(mean, demo, TE, lo, hi).items():
        assert slopes == pytest.approx([0.0, 0.0, 0.0], abs=1e-9), side  # one chunk for every window


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from vt_refine.data.demo_writer import DemoWriter
    from vt_refine.policies.diffusion import (DiffusionCfg, DiffusionPolicy, DiffusionPolicyCfg, PointEncoderCfg,
                                              StateEncoderCfg, UnetCfg, save_checkpoint)

    root = tmp_path_factory.mktemp("open_loop")
    expected = {"actions": ((16,), "float32"), "obs/joint_pos": ((16,), "float32"),
                "obs/point_cloud": ((8, 5), "float32"), "states/expert_phase": ((1,), "float32")}
    ramp = np.repeat(np.linspace(-0.5, 0.5, STEPS, dtype=np.float32)[:, None], 16, axis=1)
    phase = np.repeat(np.arange(8, dtype=np.float32), STEPS // 8)[:, None]  # 5 steps in each of the 8 phases
    with DemoWriter(root / "demos.hdf5", TASK, {}, expected) as writer:
        for episode in range(2):
            writer.append_episode({"joint_pos": ramp.copy(), "point_cloud": np.zeros((STEPS, 8, 5), np.float32)},
                                  ramp.copy(), states={"expert_phase": phase}, success=True, seed=episode)
    old = {k: v for k, v in expected.items() if not k.startswith("states")}
    with DemoWriter(root / "old.hdf5", TASK, {}, old) as writer:
        writer.append_episode({"joint_pos": ramp.copy(), "point_cloud": np.zeros((STEPS, 8, 5), np.float32)},
                              ramp.copy(), success=True, seed=0)
    cfg = DiffusionPolicyCfg(num_points=8, point_encoder=PointEncoderCfg(hidden_dims=(8,), out_dim=8),
                             state_encoder=StateEncoderCfg(hidden_dims=(16,)),
                             unet=UnetCfg(down_dims=(16, 32), kernel_size=3, diffusion_step_embed_dim=8),
                             diffusion=DiffusionCfg(denoising_steps=10, ddim_steps=5))
    unit_range = {"min": -np.ones(16), "max": np.ones(16)}
    stats = {"actions": dict(unit_range), "joint_pos": dict(unit_range)}
    checkpoint = save_checkpoint(root / "policy.pt", DiffusionPolicy.from_stats(cfg, stats), task_id=TASK)
    return root, checkpoint


def test_prints_errors_per_phase_and_sampler_next_to_the_reference(script, files, capsys):
    root, checkpoint = files
    assert script.main([str(checkpoint), str(root / "demos.hdf5"), "--samplers", "ddim", "ddpm", "--windows", "8"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["phases"]) == ["approach", "grasp", "lift", "align", "insert"]
    for phase, entry in report["phases"].items():
        assert 1 <= entry["windows"] <= 8
        for key in ("ddim", "ddpm", "reference_repeat_first_action", "reference_hold_observed_joints"):
            assert set(entry[key]) == {"left", "right", "fingers"}, (phase, key)
        assert entry["ddim"]["left"] > 0.0  # an untrained policy misses
        for stat in ("median", "p90"):
            for key in ("left", "right", "fingers"):
                assert 0.0 <= entry[f"ddim_{stat}"][key] <= entry["ddim_p90"][key] + 1e-9, (phase, stat, key)
    assert report["phases"]["approach"]["windows"] == 8  # pregrasp + approach: 20 windows to draw 8 from


def test_old_demos_and_bad_checkpoints_are_clear_errors(script, files, tmp_path, capsys):
    root, checkpoint = files
    assert script.main([str(tmp_path / "missing.pt"), str(root / "demos.hdf5")]) == 2
    assert "missing.pt" in capsys.readouterr().err
    assert script.main([str(checkpoint), str(root / "old.hdf5")]) == 2
    assert "collect new ones" in capsys.readouterr().err
