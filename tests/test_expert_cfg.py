"""The scripted expert's per-assembly settings (no simulation)."""

from types import SimpleNamespace

import pytest

from vt_refine.assets.part_designs import make_assembly
from vt_refine.assets.parts import ASSEMBLY_SPECS
from vt_refine.expert import ScriptedAssemblyExpert, ScriptedExpertCfg
from vt_refine.expert.scripted_expert import ASSEMBLY_EXPERT_OVERRIDES, PHASES

EPISODE_STEPS = 240  # AssemblyEnvCfg: 240 control steps at 15 Hz


def test_overrides_apply_only_to_their_assembly():
    default = ScriptedExpertCfg()
    nut = ScriptedExpertCfg.for_assembly("nut_and_bolt")
    assert nut.durations["lift"] > default.durations["lift"]  # the light nut is lifted slowly
    assert nut.insert_speed > default.insert_speed  # and comes down the 66 mm shank faster
    assert nut.durations["pregrasp"] == default.durations["pregrasp"]  # untouched keys keep their defaults
    assert ScriptedExpertCfg.for_assembly("peg_in_hole") == default
    # for_assembly must not leak into the shared default durations
    assert ScriptedExpertCfg().durations == default.durations


@pytest.mark.parametrize("name", [s.name for s in ASSEMBLY_SPECS.values()])
def test_every_assembly_script_fits_the_episode(name):
    cfg = ScriptedExpertCfg.for_assembly(name)
    assert set(cfg.durations) == set(PHASES)
    assert cfg.longest_script() <= EPISODE_STEPS, (name, cfg.longest_script())


def test_override_keys_are_real_cfg_fields():
    fields = set(vars(ScriptedExpertCfg()))
    for name, overrides in ASSEMBLY_EXPERT_OVERRIDES.items():
        assert name in {s.name for s in ASSEMBLY_SPECS.values()}, name
        assert set(overrides) <= fields, set(overrides) - fields


def test_a_script_longer_than_the_episode_is_refused():
    cfg = ScriptedExpertCfg()
    cfg.durations = {**cfg.durations, "insert": 200}
    env = SimpleNamespace(max_episode_length=EPISODE_STEPS)
    with pytest.raises(ValueError, match="more than the episode's 240"):
        ScriptedAssemblyExpert(env, make_assembly("peg_in_hole"), cfg=cfg)


def test_alignment_travel_and_descent_start_and_stop_at_rest():
    """No velocity jump where the lateral travel hands over to the descent (mid-alignment) or at the ends."""
    import torch

    from vt_refine.expert.scripted_expert import align_halves

    steps = 28
    u = torch.arange(steps + 1, dtype=torch.float64) / steps
    travel, descent = align_halves(u)
    assert travel[0] == 0 and travel[steps // 2] == 1 and torch.all(travel[steps // 2:] == 1)
    assert torch.all(descent[: steps // 2 + 1] == 0) and descent[-1] == 1
    for progress in (travel, descent):
        speed = progress.diff()
        assert torch.all(speed >= 0)
        peak = float(speed.max())
        # the step into and out of each half moves a small fraction of the peak step (smoothstep: ~1/10 here)
        moving = torch.nonzero(speed > 0).flatten()
        assert float(speed[moving[0]]) < 0.25 * peak and float(speed[moving[-1]]) < 0.25 * peak


def test_the_close_dwell_lengthens_only_the_close_phase():
    plain, dwell = ScriptedExpertCfg(), ScriptedExpertCfg(close_dwell=6)
    close = PHASES.index("close")
    assert dwell.phase_steps()[close] == plain.durations["close"] + 6
    assert [n for i, n in enumerate(dwell.phase_steps()) if i != close] == [
        n for i, n in enumerate(plain.phase_steps()) if i != close]
    assert dwell.longest_script() == plain.longest_script() + 6


def _grasp_poses(noise: float, seed: int = 3, n: int = 6):
    """The left hand's planned grasp of a peg-in-hole socket at its default spot (no simulation: the planner only
    needs the part pose, the grasp site and the arm's kinematics)."""
    import math

    import torch

    from vt_refine.assets.kinematics import ArmKinematics
    from vt_refine.expert.scripted_expert import _rot_z

    expert = object.__new__(ScriptedAssemblyExpert)
    expert.cfg, expert.device = ScriptedExpertCfg(grasp_depth_noise=noise), "cpu"
    expert.generator = torch.Generator().manual_seed(seed)
    socket = torch.eye(4, dtype=torch.float64).repeat(n, 1, 1)
    socket[:, :3, :3] = _rot_z(torch.full((n,), math.pi, dtype=torch.float64))  # the cfg's default: yawed 180 deg
    socket[:, :3, 3] = torch.tensor([0.0, -0.05, 0.0], dtype=torch.float64)
    q_start = torch.zeros(n, 6, dtype=torch.float64)
    site = make_assembly("peg_in_hole").socket_grasp
    return expert._grasp_pose(socket, site, (0.0, 1.0, 0.0), n, ArmKinematics("left"), q_start)


def test_the_grasp_depth_noise_moves_each_hand_along_its_fingers_only():
    """grasp_depth_noise shifts the planned grasp along the tool's x axis (the fingers) by a different amount per
    env, within +-noise, and nowhere else; the same seed plans the same grasps."""
    import torch

    plain, noisy = _grasp_poses(0.0), _grasp_poses(0.008)
    torch.testing.assert_close(noisy, _grasp_poses(0.008))
    torch.testing.assert_close(noisy[:, :3, :3], plain[:, :3, :3])  # same orientation
    shift = (torch.linalg.inv(plain) @ noisy)[:, :3, 3]  # in the plain grasp's tool frame
    assert float(shift[:, 1:].abs().max()) < 1e-9
    assert float(shift[:, 0].abs().max()) <= 0.008 and float(shift[:, 0].std()) > 0.001
