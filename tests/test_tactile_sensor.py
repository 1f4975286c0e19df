"""The Isaac Lab wrapper PiezoTactileSensor on a kit-less Newton CPU scene: the ALOHA twin plus a mesh box
placed so that it presses 1 mm into one pad. No physics step is taken: the check is that the sensor reads
the pad and target states through the asset data, the box mesh from the stage, and reports the expected
taxels, forces and frames. Build-time errors name the cfg field.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

pytestmark = pytest.mark.sim

DEPTH = 1.0e-3  # [m]
K_N = 50.0  # [N/m]
BOX_SIZE = (0.012, 0.02, 0.008)  # along the pad's x (cols), y (normal), z (rows) [m]
BOX_CENTER_XZ = (0.004, 0.0)  # in the pad frame: covers x in [-2, 10] mm, z in [-4, 4] mm


@pytest.fixture(scope="module")
def tactile_scene():
    import isaaclab.sim as sim_utils
    from isaaclab.assets import RigidObjectCfg
    from isaaclab.scene import InteractiveScene, InteractiveSceneCfg
    from isaaclab.sim import SimulationCfg
    from isaaclab.utils import configclass
    from isaaclab_newton.physics import MJWarpSolverCfg, NewtonCfg

    from vt_refine.assets.aloha import aloha_articulation_cfg
    from vt_refine.sensors.piezo_tactile import PiezoTactileSensorCfg

    @configclass
    class SceneCfg(InteractiveSceneCfg):
        robot = aloha_articulation_cfg(prim_path="{ENV_REGEX_NS}/Robot")
        box = RigidObjectCfg(
            prim_path="{ENV_REGEX_NS}/Box",
            spawn=sim_utils.MeshCuboidCfg(
                size=BOX_SIZE,
                rigid_props=sim_utils.RigidBodyPropertiesCfg(kinematic_enabled=True),
                collision_props=sim_utils.CollisionPropertiesCfg(collision_enabled=False),
                mass_props=sim_utils.MassPropertiesCfg(mass=0.1),
            ),
            init_state=RigidObjectCfg.InitialStateCfg(pos=(0.0, 0.0, 0.5)),
        )
        tactile = PiezoTactileSensorCfg(target_asset_names=("box",), k_n=K_N, k_d=0.0)

    physics = NewtonCfg(solver_cfg=MJWarpSolverCfg(), use_cuda_graph=False)
    sim_cfg = SimulationCfg(dt=1 / 120, device="cpu", physics=physics)
    with sim_utils.build_simulation_context(sim_cfg=sim_cfg) as sim:
        scene = InteractiveScene(SceneCfg(num_envs=2, env_spacing=2.0))
        sim.reset()
        # open the grippers (home pose) and turn env 1's left waist a little, so the envs' pads differ
        robot = scene["robot"]
        joint_pos = robot.data.default_joint_pos.torch.clone()
        joint_pos[1, robot.joint_names.index("left_waist")] = 0.2
        robot.write_joint_position_to_sim_index(position=joint_pos)
        scene.update(sim.get_physics_dt())
        yield sim, scene


def _pad_pose(scene, pad_name):
    robot = scene["robot"]
    index = list(robot.body_names).index(pad_name)
    pose = robot.data.body_link_pose_w.torch[:, index].clone()
    return pose[:, :3], pose[:, 3:]


def test_box_pressed_into_a_pad_reads_k_n_times_depth_on_the_covered_taxels(tactile_scene):
    from isaaclab.utils.math import quat_apply

    from vt_refine.sensors.piezo_tactile import normalize_tactile, points_to_frame

    sim, scene = tactile_scene
    sensor = scene["tactile"]
    assert sensor.is_bound and sensor.model is not None  # found its scene, robot and box by name
    pad_pos, pad_quat = _pad_pose(scene, sensor.cfg.pad_body_names[0])
    # box centre in the pad frame: its near face 1 mm beyond the pad's contact face (-y face, y = -1.5 mm)
    local = torch.tensor([BOX_CENTER_XZ[0], -0.0015 + DEPTH - 0.5 * BOX_SIZE[1], BOX_CENTER_XZ[1]])
    box_pos = pad_pos + quat_apply(pad_quat, local.expand(2, 3))
    box = scene["box"]
    box.write_root_pose_to_sim_index(root_pose=torch.cat([box_pos, pad_quat], dim=-1))
    scene.update(sim.get_physics_dt())
    data = sensor.data

    expected = np.zeros((12, 32), dtype=bool)
    expected[4:8, 15:21] = True  # rows z = -3..3 mm, cols x = -1..9 mm
    for env in range(2):
        np.testing.assert_array_equal(data.contact[env, 0].numpy(), expected)
        assert not data.contact[env, 1:].any()
        np.testing.assert_allclose(data.force[env, 0][torch.from_numpy(expected)].numpy(), K_N * DEPTH, rtol=2e-3)
    assert torch.equal(data.force, data.force_ideal)  # realism is off by default
    torch.testing.assert_close(data.normalized, normalize_tactile(data.force, sensor.cfg.normalization))

    # world positions: the pad pose applied to the layout; output frame: the default camera pose per env
    layout = torch.tensor(sensor.cfg.taxel_layout()[0].reshape(-1, 3), dtype=torch.float32)
    expected_w = pad_pos[:, None] + quat_apply(pad_quat[:, None].expand(2, 384, 4), layout.expand(2, 384, 3))
    torch.testing.assert_close(data.taxel_pos_w[:, 0], expected_w, atol=1e-5, rtol=0)
    origins = scene.env_origins.to(torch.float32)
    expected_frame_pos = origins + torch.tensor(sensor.cfg.output_frame_pos)
    torch.testing.assert_close(data.output_frame_pos_w, expected_frame_pos, atol=1e-6, rtol=0)
    in_frame = points_to_frame(data.taxel_pos_w, data.output_frame_pos_w, data.output_frame_quat_w)
    assert data.tactile_points.shape == (2, 4 * 384, 4)
    torch.testing.assert_close(data.tactile_points[..., :3], in_frame.reshape(2, -1, 3))
    torch.testing.assert_close(data.tactile_points[..., 3], data.normalized.reshape(2, -1))
    # the right arm has the same joints in both envs: same points in each env's output frame, not in the world
    torch.testing.assert_close(data.taxel_pos_frame[0, 2:], data.taxel_pos_frame[1, 2:], atol=1e-5, rtol=0)
    assert (data.taxel_pos_w[0, 2:] - data.taxel_pos_w[1, 2:]).norm(dim=-1).min() > 1.0
    assert (data.taxel_pos_frame[0, :2] - data.taxel_pos_frame[1, :2]).norm(dim=-1).min() > 0.01  # waist turned

    # resets by index (through the scene) and by mask keep the readings of an unchanged scene
    import warp as wp

    force_before = data.force.clone()
    scene.reset([1])
    sensor.reset(env_mask=wp.array([True, False], dtype=wp.bool, device="cpu"))
    scene.update(sim.get_physics_dt())
    torch.testing.assert_close(sensor.data.force, force_before)


def test_pad_faces_point_at_each_other(tactile_scene):
    _, scene = tactile_scene
    data = scene["tactile"].data
    for left, right in ((0, 1), (2, 3)):
        left_pos, right_pos = data.taxel_pos_w[0, left].mean(0), data.taxel_pos_w[0, right].mean(0)
        left_pad, _ = _pad_pose(scene, scene["tactile"].cfg.pad_body_names[left])
        right_pad, _ = _pad_pose(scene, scene["tactile"].cfg.pad_body_names[right])
        # each pad's taxels sit on the face towards the other finger, so the taxel planes are closer
        assert (left_pos - right_pos).norm() < (left_pad[0] - right_pad[0]).norm() - 0.0029


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"pad_body_names": ("left_left_finger_pad", "nope_pad", "right_left_finger_pad", "right_right_finger_pad")},
         "pad_body_names"),
        ({"target_prim_paths": ("{ENV_REGEX_NS}/Missing",)}, r"target_prim_paths\[0\]"),
        ({"target_prim_paths": ("/physicsScene",)}, r"target_prim_paths\[0\].*no UsdGeom.Mesh"),
        ({"target_asset_names": ("ghost",)}, r"target_asset_names\[0\]"),
    ],
)
def test_build_errors_name_the_cfg_field(tactile_scene, changes, field):
    from isaaclab.utils import replace

    from vt_refine.sensors.piezo_tactile import PiezoTactileSensor, PiezoTactileSensorError

    _, scene = tactile_scene
    cfg = replace(scene["tactile"].cfg, prim_path="{ENV_REGEX_NS}/Robot", **changes)
    sensor = PiezoTactileSensor(cfg)  # built outside the scene: binds explicitly
    with pytest.raises(PiezoTactileSensorError, match=field):
        sensor.bind_scene(scene)
        sensor._initialize_callback(None)  # what PHYSICS_READY does for sensors of the scene


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"rows": 20}, "rows"), ({"pitch": 0.0021}, "cols"), ({"pad_face_signs": (1, -1)}, "pad_face_signs"),
     ({"k_d": -1.0}, "k_d"), ({"output_frame_rot": (0.0, 0.0, 0.0, 2.0)}, "output_frame_rot")],
)
def test_cfg_errors_name_the_field(changes, field):
    from vt_refine.sensors.piezo_tactile import PiezoTactileSensorCfg, PiezoTactileSensorError

    with pytest.raises(PiezoTactileSensorError, match=field):
        PiezoTactileSensorCfg(**changes).validate()
