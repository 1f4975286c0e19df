"""Point clouds in the real assembly env (kit-less Newton, CPU, one env of 2 worlds for the module).

A static probe box of known size and pose is added to the scene; the depth camera must see it where it is. The
camera and mesh sources must agree on where the plug is; taxel points must sit on the pads' faces; the policy
group is a dict with a 2-step history that reaches rsl-rl as a nested TensorDict and the DPPO actor reads it.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import built_env, hold_action
import torch

pytestmark = pytest.mark.sim

TASK = "VTRefine-PegInHole-Aloha"
PROBE_POS = (-0.12, 0.0, 0.03)  # env frame [m]: behind the parts as seen from the camera, on the table
PROBE_SIZE = (0.05, 0.08, 0.06)  # [m]


def _add_probe(cfg):
    import isaaclab.sim as sim_utils
    from isaaclab.assets import AssetBaseCfg

    cfg.scene.probe_box = AssetBaseCfg(
        prim_path="{ENV_REGEX_NS}/ProbeBox",
        spawn=sim_utils.CuboidCfg(size=PROBE_SIZE, collision_props=sim_utils.UsdPhysicsCollisionCfg()),
        init_state=AssetBaseCfg.InitialStateCfg(pos=PROBE_POS),
    )


@pytest.fixture(scope="module")
def env():
    env = built_env(TASK, _add_probe)
    yield env
    env.close()


def _term(env, cls_name="visual_point_cloud", **kwargs):
    """A point-cloud term of its own settings (noise off unless asked), built on the module's env."""
    from isaaclab.managers import ObservationTermCfg

    from vt_refine.tasks.assembly import mdp
    from vt_refine.tasks.assembly.point_cloud_cfg import PointCloudCfg

    cls = getattr(mdp, cls_name)
    cfg = PointCloudCfg(**{"noise_std": 0.0, **kwargs})
    return cls(ObservationTermCfg(func=cls, params={"cfg": cfg}), env)


def _to_env(points_cam: torch.Tensor) -> torch.Tensor:
    """Camera-frame points -> env frame through the one camera constant (independent of the terms)."""
    from isaaclab.utils.math import matrix_from_quat

    from vt_refine.tasks.assembly.point_cloud_cfg import CAMERA_POS, CAMERA_ROT

    rot = matrix_from_quat(torch.tensor(CAMERA_ROT))
    return points_cam @ rot.T + torch.tensor(CAMERA_POS)


def _hold(env) -> torch.Tensor:
    """The action that holds the current joint targets (home after a reset)."""
    return hold_action(env, "joint_pos_target")


def test_policy_group_is_a_dict_with_history(env):
    obs = env.observation_manager.compute()
    assert set(obs["policy"]) == {"point_cloud", "joint_pos"}
    assert obs["policy"]["point_cloud"].shape == (2, 2, 1024 + 1536, 5)
    assert obs["policy"]["joint_pos"].shape == (2, 2, 16)
    assert obs["critic"].shape == (2, 34)  # the critic group is unchanged
    cloud = obs["policy"]["point_cloud"][:, -1]
    assert (cloud[:, :1024, 3:] == 0).all() and (cloud[:, 1024:, 4] == 1).all()  # visual then tactile


def test_box_of_known_pose_lies_on_its_camera_facing_faces(env):
    lo = np.array(PROBE_POS) - np.array(PROBE_SIZE) / 2
    hi = np.array(PROBE_POS) + np.array(PROBE_SIZE) / 2
    term = _term(env, crop_min=tuple(lo - 0.01), crop_max=tuple(hi + 0.01), num_points=512)
    pts = _to_env(term(env)[..., :3]).numpy()  # (E, N, 3), noise off
    assert term.last_mask.all()
    for e in range(env.num_envs):
        p = pts[e]
        q = np.abs(p - PROBE_POS) - np.array(PROBE_SIZE) / 2
        dist = np.abs(np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0))
        assert dist.max() < 0.002, f"env {e}: a point {dist.max() * 1000:.1f} mm off the box surface"
        rel = (p - PROBE_POS) / (np.array(PROBE_SIZE) / 2)
        top, front, back = rel[:, 2] > 0.95, rel[:, 0] > 0.95, rel[:, 0] < -0.95
        # the camera sits at +x above the box: top and +x faces are seen, the -x face never
        assert len(np.unique(p[top], axis=0)) > 15 and len(np.unique(p[front], axis=0)) > 5 and back.sum() == 0


def test_crop_table_and_count(env):
    from vt_refine.tasks.assembly.point_cloud_cfg import PointCloudCfg

    cfg = PointCloudCfg()
    term = _term(env, num_points=333)
    cloud = term(env)
    assert cloud.shape == (2, 333, 5) and term.last_mask.all()
    pts = _to_env(cloud[..., :3])
    assert (pts >= torch.tensor(cfg.crop_min) - 1e-5).all() and (pts <= torch.tensor(cfg.crop_max) + 1e-5).all()
    assert pts[..., 2].min() > cfg.table_top_z + cfg.table_margin - 1e-5  # the table is gone
    merged = _term(env, "merged_point_cloud", num_points=333)(env)
    assert merged.shape == (2, 333 + 1536, 5)


def test_camera_and_mesh_sources_agree_on_the_plug(env):
    plug = (env.scene["plug"].data.root_pos_w.torch - env.scene.env_origins)[0].tolist()
    box = {"crop_min": (plug[0] - 0.035, plug[1] - 0.035, -0.01), "crop_max": (plug[0] + 0.035, plug[1] + 0.035, 0.12)}
    camera = _term(env, **box)
    mesh = _term(env, source="mesh", mesh_part_names=("plug",), mesh_robot_links=(), **box)
    centroids = {}
    for name, term in (("camera", camera), ("mesh", mesh)):
        # every kept candidate, not the resampled N (pixels are few at 8 mm each)
        points, valid = term.source.candidates(env, term.cam_pos, term.cam_rot)
        from vt_refine.tasks.assembly.mdp.point_cloud import workspace_mask

        keep = valid & workspace_mask(points, term.crop_min, term.crop_max, term.table_z)
        assert int(keep[0].sum()) > 20, name
        centroids[name] = points[0][keep[0]].mean(dim=0)
    gap = float((centroids["camera"] - centroids["mesh"]).norm())
    assert gap < 0.005, f"camera and mesh plug centroids {gap * 1000:.1f} mm apart: {centroids}"
    # and the full mesh-source cloud (parts + gripper links) has the right layout
    cloud = _term(env, source="mesh", num_points=256)(env)
    assert cloud.shape == (2, 256, 5) and cloud[..., 3:].abs().sum() == 0


def test_tactile_points_sit_on_the_pad_faces(env):
    from isaaclab.utils.math import matrix_from_quat

    from vt_refine.assets.aloha import PAD_BODY_NAMES, PAD_SIZE

    obs = env.observation_manager.compute()
    taxels = _to_env(obs["policy"]["point_cloud"][:, -1, 1024:, :3]).reshape(2, 4, 384, 3)
    robot = env.scene["robot"]
    signs = env.scene.sensors["tactile"].cfg.pad_face_signs
    for pad, name in enumerate(PAD_BODY_NAMES):
        body = robot.body_names.index(name)
        pos = robot.data.body_pos_w.torch[:, body] - env.scene.env_origins
        rot = matrix_from_quat(robot.data.body_quat_w.torch[:, body])
        local = torch.einsum("eji,enj->eni", rot, taxels[:, pad] - pos[:, None])  # pad frame
        assert torch.allclose(local[..., 1], torch.full_like(local[..., 1], signs[pad] * PAD_SIZE[1] / 2), atol=2e-4)
        assert (local[..., 0].abs() <= PAD_SIZE[0] / 2).all() and (local[..., 2].abs() <= PAD_SIZE[2] / 2).all()


def test_history_stacks_the_previous_step(env):
    env.reset()
    action = _hold(env)
    first, *_ = env.step(action)
    second, *_ = env.step(action)
    for key in ("point_cloud", "joint_pos"):
        assert torch.equal(second["policy"][key][:, 0], first["policy"][key][:, 1]), key
    # noise and resampling make consecutive clouds differ
    assert not torch.equal(second["policy"]["point_cloud"][:, 1], first["policy"]["point_cloud"][:, 1])


def test_rsl_rl_gets_a_nested_tensordict_the_dppo_actor_reads(env):
    from isaaclab_rl.rsl_rl import RslRlVecEnvWrapper
    from tensordict import TensorDict

    from vt_refine.policies.diffusion import (
        DiffusionCfg,
        DiffusionPolicy,
        DiffusionPolicyCfg,
        PointEncoderCfg,
        StateEncoderCfg,
        UnetCfg,
    )
    from vt_refine.rl.dppo import DiffusionActor

    obs = RslRlVecEnvWrapper(env).get_observations()
    assert isinstance(obs["policy"], TensorDict)
    assert obs["policy"]["point_cloud"].shape == (2, 2, 2560, 5) and obs["policy"]["joint_pos"].shape == (2, 2, 16)
    cfg = DiffusionPolicyCfg(
        num_points=2560, obs_steps=2, horizon_steps=16, act_steps=8,
        point_encoder=PointEncoderCfg(hidden_dims=(16,), out_dim=8), state_encoder=StateEncoderCfg(hidden_dims=(16,)),
        unet=UnetCfg(down_dims=(16, 32), kernel_size=3, diffusion_step_embed_dim=16),
        diffusion=DiffusionCfg(denoising_steps=4, ddim_steps=2),
    )
    unit = {"min": -np.ones(16), "max": np.ones(16)}
    stats = {"actions": unit, "joint_pos": unit}
    actor = DiffusionActor(DiffusionPolicy.from_stats(cfg, stats), ft_denoising_steps=2)
    out = actor.act(obs, generator=torch.Generator().manual_seed(0))
    assert out.actions.shape == (2, 16, 16) and torch.isfinite(out.actions).all()


def test_visual_variants_are_registered_without_touch(env):
    import gymnasium as gym

    from vt_refine.app.envs import make_env_cfg
    from vt_refine.tasks.assembly.config.aloha import TASKS
    from vt_refine.tasks.assembly.config.aloha.agents.rsl_rl_dppo_cfg import TASK_DPPO_CFGS

    for name in TASKS:
        task_id = f"VTRefine-{name}-Aloha-Visual"
        assert task_id in gym.registry and task_id in TASK_DPPO_CFGS
        assert "rsl_rl_dppo_cfg_entry_point" in gym.spec(task_id).kwargs
    cfg = make_env_cfg("VTRefine-PegInHole-Aloha-Visual", num_envs=2, device="cpu")
    assert cfg.point_cloud.include_tactile is False and cfg.task.assembly == "00186"
    # what such an env's policy term returns: the visual points only, value and flag channels zero
    cloud = _term(env, "merged_point_cloud", include_tactile=False)(env)
    assert cloud.shape == (2, 1024, 5) and cloud[..., 3:].abs().sum() == 0


def test_bad_settings_fail_at_build_time(env):
    from vt_refine.tasks.assembly.point_cloud_cfg import PointCloudCfgError

    # a crop box the camera cannot see (above and behind it)
    with pytest.raises(PointCloudCfgError, match="sees none of the box"):
        _term(env, crop_min=(0.5, -0.2, 0.7), crop_max=(0.9, 0.2, 1.0))
    with pytest.warns(UserWarning, match="sees only"):
        _term(env, crop_min=(-0.2, -0.25, 0.0), crop_max=(0.2, 0.25, 1.5))
    with pytest.raises(PointCloudCfgError, match="no camera 'nope'"):
        _term(env, camera_name="nope")
    with pytest.raises(PointCloudCfgError, match="num_points"):
        _term(env, num_points=0)
    # the tactile points in another frame than the camera's
    data = env.scene.sensors["tactile"].data
    data.output_frame_pos_w[:, 2] += 0.05
    try:
        with pytest.raises(PointCloudCfgError, match="differ"):
            _term(env)
    finally:
        data.output_frame_pos_w[:, 2] -= 0.05
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _term(env)  # the defaults build quietly
