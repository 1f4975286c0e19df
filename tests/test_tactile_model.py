"""Analytic checks of the batched Warp taxel model (CPU).

Geometry used throughout: one pad with identity orientation whose body origin sits at y = -1.5 mm, so its
+y contact face is the plane y = 0; the taxels of the FlexiTac grid (12 x 32, 2 mm pitch) lie on it at
odd-millimetre x (columns) and z (rows) coordinates. A target box whose local frame has its bottom face at
y = 0 and that is placed at world y = -d therefore covers the taxels under its footprint at depth d.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial.transform import Rotation

from vt_refine.sensors.piezo_tactile import (
    TaxelForceModel,
    TaxelLayoutError,
    TaxelModelCfg,
    TaxelModelError,
    make_tactile_points,
    make_taxel_grid,
    points_to_frame,
)

torch.set_num_threads(1)

PAD_SIZE = (0.06665, 0.003, 0.026)  # x along the finger, y normal, z across (the ALOHA asset's pad frame)
ROWS, COLS, PITCH = 12, 32, 0.002
PAD_ORIGIN = (0.0, -0.0015, 0.0)  # puts the +y face at y = 0
IDENTITY = (0.0, 0.0, 0.0, 1.0)


def _layout(face_sign: int = +1) -> np.ndarray:
    positions, _ = make_taxel_grid(PAD_SIZE, ROWS, COLS, PITCH, face_sign=face_sign)
    return positions.reshape(1, ROWS, COLS, 3)


def _box(x_range, y_height, z_range) -> trimesh.Trimesh:
    """Box in its own frame: x in x_range, y in [0, y_height], z in z_range [m]."""
    extents = (x_range[1] - x_range[0], y_height, z_range[1] - z_range[0])
    box = trimesh.creation.box(extents=extents)
    box.apply_translation((0.5 * (x_range[0] + x_range[1]), 0.5 * y_height, 0.5 * (z_range[0] + z_range[1])))
    return box


def _states(num_envs, pad_pos, pad_quat, target_pos, target_quat,
            pad_lin=None, pad_ang=None, tgt_lin=None, tgt_ang=None):
    """Tensors (E, P=1, .) and (E, T, .) from per-env lists."""
    def t(value, shape):
        return torch.as_tensor(np.asarray(value, dtype=np.float32)).reshape(shape)

    num_targets = np.asarray(target_pos).reshape(num_envs, -1, 3).shape[1]
    zeros_pad = np.zeros((num_envs, 1, 3))
    zeros_tgt = np.zeros((num_envs, num_targets, 3))
    return (
        t(pad_pos, (num_envs, 1, 3)), t(pad_quat, (num_envs, 1, 4)),
        t(zeros_pad if pad_lin is None else pad_lin, (num_envs, 1, 3)),
        t(zeros_pad if pad_ang is None else pad_ang, (num_envs, 1, 3)),
        t(target_pos, (num_envs, num_targets, 3)), t(target_quat, (num_envs, num_targets, 4)),
        t(zeros_tgt if tgt_lin is None else tgt_lin, (num_envs, num_targets, 3)),
        t(zeros_tgt if tgt_ang is None else tgt_ang, (num_envs, num_targets, 3)),
    )


# ------------------------------------------------------------------------------------------------ layout


def test_grid_lies_on_the_contact_face_with_the_flexitac_pitch():
    positions, normal = make_taxel_grid(PAD_SIZE, ROWS, COLS, PITCH, face_sign=-1)
    grid = positions.reshape(ROWS, COLS, 3)
    np.testing.assert_allclose(normal, (0.0, -1.0, 0.0))  # thin axis y detected, negative face
    np.testing.assert_allclose(grid[..., 1], -0.0015)  # half the thickness out along the normal
    # the 32 columns run along the long in-plane side (x), the 12 rows along z; grid centred on the face
    np.testing.assert_allclose(np.diff(grid[0, :, 0]), PITCH)
    np.testing.assert_allclose(np.diff(grid[:, 0, 2]), PITCH)
    np.testing.assert_allclose(grid[..., 0].mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(grid[..., 2].mean(), 0.0, atol=1e-12)
    assert grid[..., 0].max() == pytest.approx(0.031) and grid[..., 2].max() == pytest.approx(0.011)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"pitch": 0.0021}, "cols"),  # 32 * 2.1 mm = 67.2 mm > 66.65 mm (rows: 25.2 mm fit in 26 mm)
        ({"rows": 14}, "rows"),  # 14 * 2 mm = 28 mm > 26 mm
        ({"pitch": -0.002}, "pitch"),
        ({"pad_size": (0.05, 0.003)}, "pad_size"),
        ({"rows": 0}, "rows"),
    ],
)
def test_grid_that_does_not_fit_names_the_field(kwargs, field):
    args = {"pad_size": PAD_SIZE, "rows": ROWS, "cols": COLS, "pitch": PITCH, **kwargs}
    with pytest.raises(TaxelLayoutError, match=field):
        make_taxel_grid(**args)


# --------------------------------------------------------------------------------------------- flat box


def test_flat_box_gives_k_n_times_depth_exactly_on_the_covered_taxels():
    depth, k_n = 5.0e-4, 1000.0
    # footprint edges on even millimetres, i.e. half-way between taxels, 1 mm (> depth) from the nearest ones
    box = _box((0.0, 0.012), 0.02, (-0.004, 0.004))
    model = TaxelForceModel(TaxelModelCfg(k_n=k_n, k_d=0.3), _layout(), [box], num_envs=1)
    target_pos = (0.004, -depth, -0.002)  # footprint x in [4, 16] mm, z in [-6, 2] mm
    state = model.compute(*_states(1, PAD_ORIGIN, IDENTITY, target_pos, IDENTITY))

    expected_mask = np.zeros((ROWS, COLS), dtype=bool)
    expected_mask[3:7, 18:24] = True  # rows z = -5..1 mm, cols x = 5..15 mm
    contact = state.contact[0, 0].numpy()
    np.testing.assert_array_equal(contact, expected_mask)
    force = state.force[0, 0].numpy().astype(np.float64)
    expected_depth = float(np.float32(depth))
    np.testing.assert_allclose(force[expected_mask], k_n * expected_depth, rtol=1e-6)
    assert np.all(force[~expected_mask] == 0.0)
    np.testing.assert_allclose(state.depth[0, 0].numpy()[expected_mask], expected_depth, rtol=1e-6)
    normals = state.contact_normal_w[0, 0].numpy().reshape(ROWS, COLS, 3)
    np.testing.assert_allclose(normals[expected_mask], np.tile((0.0, -1.0, 0.0), (24, 1)), atol=1e-5)
    index = state.target_index[0, 0].numpy().reshape(ROWS, COLS)
    assert np.all(index[expected_mask] == 0) and np.all(index[~expected_mask] == -1)


def test_sphere_indentation_is_radially_symmetric_about_the_contact_point():
    radius, indent, k_n = 0.01, 0.0015, 1000.0
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=radius)
    model = TaxelForceModel(TaxelModelCfg(k_n=k_n, k_d=0.0), _layout(), [sphere], num_envs=1)
    centre_xz = np.array([0.002, -0.001])  # between taxel columns, on a taxel row
    target_pos = (centre_xz[0], radius - indent, centre_xz[1])
    target_quat = Rotation.from_euler("xyz", (0.3, -1.1, 2.0)).as_quat()  # a sphere looks the same rotated
    state = model.compute(*_states(1, PAD_ORIGIN, IDENTITY, target_pos, target_quat))

    force = state.force[0, 0].numpy().reshape(-1).astype(np.float64)
    xz = state.taxel_pos_w[0, 0].numpy()[:, [0, 2]].astype(np.float64)
    offset = np.linalg.norm(xz - centre_xz, axis=1)
    analytic = k_n * np.clip(radius - np.sqrt(offset**2 + (radius - indent) ** 2), 0.0, None)
    assert force.max() > 0.5 * k_n * indent
    # the pattern follows the analytic spherical cap (tessellation error ~0.2 % of the peak) ...
    np.testing.assert_allclose(force, analytic, atol=0.01 * analytic.max())
    # ... is symmetric: taxels at the same distance from the contact point read the same ...
    ring_of_taxel = np.round(offset, 6)  # exact distances on the 2 mm lattice, rounded to a micrometre
    rings = np.unique(ring_of_taxel[force > 0.1 * force.max()])
    assert len(rings) >= 4
    for ring in rings:
        same_ring = ring_of_taxel == ring
        assert same_ring.sum() >= 2 and np.ptp(force[same_ring]) < 0.02 * force.max()
    # ... and is centred on the contact point
    centroid = (force[:, None] * xz).sum(axis=0) / force.sum()
    np.testing.assert_allclose(centroid, centre_xz, atol=1e-4)


# -------------------------------------------------------------------------------------------- damping


@pytest.mark.parametrize("approach_speed", [0.02, -0.02])
def test_damping_term_sign_follows_approach_and_recession(approach_speed):
    depth, k_n, k_d = 5.0e-4, 1000.0, 2.0
    box = _box((-0.004, 0.004), 0.02, (-0.004, 0.004))
    model = TaxelForceModel(TaxelModelCfg(k_n=k_n, k_d=k_d), _layout(), [box], num_envs=2)
    # env 0: the pad moves into the target (+y); env 1: the target moves onto the pad (-y): same relative motion
    pad_lin = [[0.0, approach_speed, 0.0], [0.0, 0.0, 0.0]]
    tgt_lin = [[0.0, 0.0, 0.0], [0.0, -approach_speed, 0.0]]
    state = model.compute(*_states(2, [PAD_ORIGIN] * 2, [IDENTITY] * 2, [(0.0, -depth, 0.0)] * 2, [IDENTITY] * 2,
                                   pad_lin=pad_lin, tgt_lin=tgt_lin))
    mask = state.contact[0, 0]
    assert int(mask.sum()) == 16
    for env in range(2):
        np.testing.assert_allclose(state.depth_rate[env, 0][mask].numpy(), approach_speed, rtol=1e-5)
        expected = k_n * np.float32(depth) + k_d * approach_speed  # approaching (> 0) adds, receding subtracts
        np.testing.assert_allclose(state.force[env, 0][mask].numpy(), expected, rtol=1e-5)
    assert (state.force[0, 0][mask] > k_n * depth * 1.01).all() == (approach_speed > 0)


def test_depth_rate_includes_rotation_of_pad_and_target():
    depth, omega = 5.0e-4, 0.7
    box = _box((-0.02, 0.02), 0.02, (-0.01, 0.01))
    model = TaxelForceModel(TaxelModelCfg(k_n=0.0, k_d=1.0), _layout(), [box], num_envs=2)
    # env 0: the pad spins about z through its origin; env 1: the target spins about z through its origin
    pad_ang = [[0.0, 0.0, omega], [0.0, 0.0, 0.0]]
    tgt_ang = [[0.0, 0.0, 0.0], [0.0, 0.0, omega]]
    state = model.compute(*_states(2, [PAD_ORIGIN] * 2, [IDENTITY] * 2, [(0.0, -depth, 0.0)] * 2, [IDENTITY] * 2,
                                   pad_ang=pad_ang, tgt_ang=tgt_ang))
    mask = state.contact[0, 0].reshape(-1)
    x = state.taxel_pos_w[0, 0, :, 0][mask].numpy()
    # taxel velocity (w x r).y = omega * x relative to the pad origin; the normal is -y so ddot = omega * x;
    # when the target spins instead, the surface moves under the taxel with omega * x and the sign flips
    np.testing.assert_allclose(state.depth_rate[0, 0].reshape(-1)[mask].numpy(), omega * x, atol=1e-7)
    np.testing.assert_allclose(state.depth_rate[1, 0].reshape(-1)[mask].numpy(), -omega * x, atol=1e-7)


# ------------------------------------------------------------------------------------ several targets


def test_overlapping_targets_deepest_wins_in_any_order():
    shallow, deep = 3.0e-4, 8.0e-4
    small = _box((-0.004, 0.004), 0.02, (-0.004, 0.004))
    large = _box((-0.01, 0.01), 0.03, (-0.006, 0.006))
    for order in ((0, 1), (1, 0)):
        meshes = [small, large]
        depths = [deep, shallow]  # the small box sinks deeper inside the large one's footprint
        model = TaxelForceModel(TaxelModelCfg(k_n=1000.0, k_d=0.0), _layout(), [meshes[i] for i in order], num_envs=1)
        target_pos = [(0.0, -depths[i], 0.0) for i in order]
        state = model.compute(*_states(1, PAD_ORIGIN, IDENTITY, target_pos, [IDENTITY] * 2))
        depth = state.depth[0, 0].numpy()
        index = state.target_index[0, 0].numpy().reshape(ROWS, COLS)
        in_small = np.zeros((ROWS, COLS), dtype=bool)
        in_small[4:8, 14:18] = True
        in_large = np.zeros((ROWS, COLS), dtype=bool)
        in_large[3:9, 11:21] = True
        np.testing.assert_allclose(depth[in_small], deep, rtol=1e-5)  # max, not the sum deep + shallow
        np.testing.assert_allclose(depth[in_large & ~in_small], shallow, rtol=1e-5)
        assert np.all(index[in_small] == order.index(0)) and np.all(index[in_large & ~in_small] == order.index(1))
        assert np.all(depth[~in_large] == 0.0)


def test_culling_far_targets_changes_nothing():
    rng = np.random.default_rng(0)
    num_envs = 6
    meshes = [trimesh.creation.icosphere(subdivisions=3, radius=0.012), _box((-0.01, 0.01), 0.02, (-0.01, 0.01)),
              trimesh.creation.cylinder(radius=0.008, height=0.05)]
    target_pos = rng.uniform(-0.02, 0.02, (num_envs, 3, 3))
    target_pos[:, :, 1] = rng.uniform(-0.012, 0.0, (num_envs, 3))
    target_pos[::2, 2] += (0.5, 0.0, 0.0)  # far away in half of the envs
    inputs = _states(num_envs, [PAD_ORIGIN] * num_envs, [IDENTITY] * num_envs, target_pos,
                     Rotation.random(num_envs * 3, random_state=1).as_quat(),
                     pad_lin=rng.normal(0, 0.01, (num_envs, 1, 3)), tgt_ang=rng.normal(0, 1.0, (num_envs, 3, 3)))
    results = []
    for cull in (True, False):
        model = TaxelForceModel(TaxelModelCfg(k_n=1000.0, k_d=0.5, cull=cull), _layout(), meshes, num_envs=num_envs)
        state = model.compute(*inputs)
        results.append({name: getattr(state, name).clone() for name in ("force", "depth", "target_index", "contact")})
    assert results[0]["contact"].any()
    for name in results[0]:
        assert torch.equal(results[0][name], results[1][name]), name


def test_a_taxel_that_leaves_contact_reads_no_contact_again():
    # untouched taxels skip their writes, so a taxel that was pressed must still be cleared when released,
    # both when the target is still near the pad and when the pad-level cull skips it entirely
    box = _box((-0.004, 0.004), 0.02, (-0.004, 0.004))
    cfg = TaxelModelCfg(k_n=1000.0, k_d=0.5)
    pressed = _states(1, PAD_ORIGIN, IDENTITY, (0.0, -5e-4, 0.0), IDENTITY, pad_lin=(0.0, 0.0, 0.01))
    for released_pos in ((0.0, 0.002, 0.0), (0.5, 0.0, 0.0)):
        released = _states(1, PAD_ORIGIN, IDENTITY, released_pos, IDENTITY, pad_lin=(0.0, 0.0, 0.01))
        model = TaxelForceModel(cfg, _layout(), [box], num_envs=1)
        assert model.compute(*pressed).contact.sum() == 16  # 4 x 4 taxels under the 8 mm box
        state = model.compute(*released)
        fresh = TaxelForceModel(cfg, _layout(), [box], num_envs=1).compute(*released)
        for name in ("force", "depth", "depth_rate", "contact", "contact_normal_w", "taxel_pos_w", "target_index"):
            assert torch.equal(getattr(state, name), getattr(fresh, name)), (released_pos, name)
        assert state.force.sum() == 0.0 and (state.target_index == -1).all()


def test_new_state_tensors_and_in_place_updates_are_both_read():
    # the recorded launches point at the state tensors' memory: a new tensor must be re-bound, and a tensor
    # edited in place at the bound address must be re-read
    box = _box((-0.004, 0.004), 0.02, (-0.004, 0.004))
    model = TaxelForceModel(TaxelModelCfg(k_n=1000.0, k_d=0.0), _layout(), [box], num_envs=1)
    first = model.compute(*_states(1, PAD_ORIGIN, IDENTITY, (0.0, -5e-4, 0.0), IDENTITY)).force.clone()
    released = _states(1, PAD_ORIGIN, IDENTITY, (0.0, 0.01, 0.0), IDENTITY)
    assert model.compute(*released).force.sum() == 0.0
    released[4][0, 0, 1] = -1e-3  # press twice as deep through the same tensor
    np.testing.assert_allclose(model.compute(*released).force.numpy(), 2.0 * first.numpy(), rtol=1e-5)


def test_a_cfg_change_after_build_takes_effect():
    box = _box((-0.004, 0.004), 0.02, (-0.004, 0.004))
    model = TaxelForceModel(TaxelModelCfg(k_n=1000.0, k_d=0.0), _layout(), [box], num_envs=1)
    pressed = _states(1, PAD_ORIGIN, IDENTITY, (0.0, -5e-4, 0.0), IDENTITY)
    first = model.compute(*pressed).force.clone()
    model.cfg.k_n = 3000.0
    np.testing.assert_allclose(model.compute(*pressed).force.numpy(), 3.0 * first.numpy(), rtol=1e-6)
    model.cfg.k_n = -1.0
    with pytest.raises(TaxelModelError, match="k_n"):
        model.compute(*pressed)


# ------------------------------------------------------------------------------------------- batching


def test_batched_envs_equal_each_env_alone():
    rng = np.random.default_rng(3)
    num_envs, num_pads = 5, 4
    layout = np.concatenate([_layout(+1), _layout(-1), _layout(+1), _layout(-1)])
    meshes = [trimesh.creation.icosphere(subdivisions=3, radius=0.015), _box((-0.02, 0.02), 0.01, (-0.01, 0.01))]
    pad_pos = rng.uniform(-0.01, 0.01, (num_envs, num_pads, 3)).astype(np.float32)
    pad_quat = Rotation.from_rotvec(rng.normal(0, 0.2, (num_envs * num_pads, 3))).as_quat()
    pad_quat = pad_quat.reshape(num_envs, num_pads, 4).astype(np.float32)
    arrays = [pad_pos, pad_quat, *(rng.normal(0, s, (num_envs, num_pads, 3)).astype(np.float32) for s in (0.02, 0.5))]
    arrays += [rng.uniform(-0.015, 0.015, (num_envs, 2, 3)).astype(np.float32),
               Rotation.random(num_envs * 2, random_state=4).as_quat().reshape(num_envs, 2, 4).astype(np.float32)]
    arrays += [rng.normal(0, s, (num_envs, 2, 3)).astype(np.float32) for s in (0.02, 0.5)]
    tensors = [torch.from_numpy(a) for a in arrays]
    cfg = TaxelModelCfg(k_n=800.0, k_d=0.4)
    batched = TaxelForceModel(cfg, layout, meshes, num_envs=num_envs).compute(*tensors)
    assert batched.contact.sum() > 50  # the poses do press the pads into the targets
    single = TaxelForceModel(cfg, layout, meshes, num_envs=1)
    for env in range(num_envs):
        alone = single.compute(*(t[env : env + 1] for t in tensors))
        for name in ("force", "depth", "depth_rate", "contact", "taxel_pos_w", "target_index"):
            assert torch.equal(getattr(batched, name)[env], getattr(alone, name)[0]), (env, name)


def test_env_mask_keeps_previous_outputs_of_masked_envs():
    box = _box((-0.004, 0.004), 0.02, (-0.004, 0.004))
    model = TaxelForceModel(TaxelModelCfg(k_n=1000.0), _layout(), [box], num_envs=2)
    pressed = _states(2, [PAD_ORIGIN] * 2, [IDENTITY] * 2, [(0.0, -5e-4, 0.0)] * 2, [IDENTITY] * 2)
    released = _states(2, [PAD_ORIGIN] * 2, [IDENTITY] * 2, [(0.0, 0.01, 0.0)] * 2, [IDENTITY] * 2)
    before = model.compute(*pressed).force.clone()
    after = model.compute(*released, env_mask=torch.tensor([True, False])).force
    assert after[0].sum() == 0.0 and torch.equal(after[1], before[1]) and before[1].sum() > 0


# ---------------------------------------------------------------------------------------------- frames


def test_taxel_lands_at_the_known_world_and_output_frame_position():
    layout = _layout()
    model = TaxelForceModel(TaxelModelCfg(), layout, [_box((0, 0.01), 0.01, (0, 0.01))], num_envs=1)
    pad_pos = np.array([0.3, -0.2, 0.5])
    pad_quat = Rotation.from_euler("z", 90, degrees=True).as_quat()  # x -> y, y -> -x
    far = (5.0, 5.0, 5.0)
    state = model.compute(*_states(1, pad_pos, pad_quat, far, IDENTITY))
    local = layout[0, 0, 0]  # (-0.031, 0.0015, -0.011)
    expected_w = pad_pos + np.array([-local[1], local[0], local[2]])
    np.testing.assert_allclose(state.taxel_pos_w[0, 0, 0].numpy(), expected_w, atol=1e-6)

    # output frame: origin (1, 0, 0.5), rotated -90 deg about x (frame y = world -z, frame z = world y)
    frame_pos = torch.tensor([[1.0, 0.0, 0.5]])
    frame_quat = torch.tensor(Rotation.from_euler("x", -90, degrees=True).as_quat(), dtype=torch.float32)[None]
    in_frame = points_to_frame(state.taxel_pos_w, frame_pos, frame_quat)
    d = expected_w - np.array([1.0, 0.0, 0.5])
    np.testing.assert_allclose(in_frame[0, 0, 0].numpy(), (d[0], -d[2], d[1]), atol=1e-6)
    points = make_tactile_points(in_frame, torch.arange(ROWS * COLS, dtype=torch.float32).view(1, 1, ROWS, COLS))
    assert points.shape == (1, ROWS * COLS, 4)
    np.testing.assert_allclose(points[0, COLS + 2, :3].numpy(), in_frame[0, 0, COLS + 2].numpy())
    assert points[0, COLS + 2, 3] == COLS + 2  # row-major: taxel (row 1, col 2)


# ---------------------------------------------------------------------------------------------- errors


def test_bad_inputs_raise_clear_errors():
    box = _box((0, 0.01), 0.01, (0, 0.01))
    with pytest.raises(TaxelModelError, match="k_n"):
        TaxelForceModel(TaxelModelCfg(k_n=-1.0), _layout(), [box], num_envs=1)
    with pytest.raises(TaxelModelError, match="sign_method"):
        TaxelForceModel(TaxelModelCfg(sign_method="magic"), _layout(), [box], num_envs=1)
    with pytest.raises(TaxelModelError, match="target_meshes"):
        TaxelForceModel(TaxelModelCfg(), _layout(), [], num_envs=1)
    with pytest.raises(TaxelModelError, match=r"target_meshes\[0\]"):
        TaxelForceModel(TaxelModelCfg(), _layout(), [(np.zeros((4, 3)), np.array([[0, 1, 7]]))], num_envs=1)
    model = TaxelForceModel(TaxelModelCfg(), _layout(), [box], num_envs=2)
    inputs = list(_states(2, [PAD_ORIGIN] * 2, [IDENTITY] * 2, [(0, 0, 0)] * 2, [IDENTITY] * 2))
    inputs[4] = inputs[4][:1]
    with pytest.raises(TaxelModelError, match="target_pos_w"):
        model.compute(*inputs)
