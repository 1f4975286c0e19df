"""Point-cloud math without a simulator: depth -> points on an analytically rendered scene, cropping, table removal,
exact counts, padding, noise spread, surface samplers, cfg errors, and the camera-visibility check."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vt_refine.sensors.piezo_tactile.sensor_cfg import look_at_quat_xyzw
from vt_refine.tasks.assembly.mdp.point_cloud import (
    camera_to_env,
    crop_box_visibility,
    depth_to_points,
    env_to_camera,
    multiplicative_noise,
    pixel_rays,
    point_mask,
    sample_box_surface,
    sample_capsule_surface,
    subsample_points,
    tactile_channels,
    visual_channels,
    workspace_mask,
)
from vt_refine.tasks.assembly.point_cloud_cfg import (
    CAMERA_POS,
    CAMERA_ROT,
    PointCloudCfg,
    PointCloudCfgError,
    WorkspaceCameraCfg,
)

torch.set_num_threads(1)

W, H = 96, 72
BOX_CENTRE = np.array([0.02, -0.03, 0.04])  # env frame [m], resting on the table (z = 0)
BOX_SIZE = np.array([0.06, 0.05, 0.08])


def _intrinsics(width=W, height=H, hfov_deg=65.0) -> np.ndarray:
    f = 0.5 * width / math.tan(math.radians(hfov_deg) / 2)
    return np.array([[f, 0, 0.5 * width], [0, f, 0.5 * height], [0, 0, 1.0]])


def _rot(quat_xyzw) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_quat(quat_xyzw).as_matrix()


def _render_depth(cam_pos, cam_rot, k) -> np.ndarray:
    """Planar depth of a table plane (z = 0) plus an axis-aligned box, ray-cast in numpy through the pixel centres:
    an independent renderer of the scene the unprojection must recover."""
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    pix = np.stack([u, v, np.ones_like(u)], axis=-1).reshape(-1, 3)
    dirs_cam = pix @ np.linalg.inv(k).T  # z = 1 in the camera frame
    dirs = dirs_cam @ cam_rot.T
    t_plane = np.where(dirs[:, 2] < 0, -cam_pos[2] / dirs[:, 2], np.inf)
    lo, hi = BOX_CENTRE - BOX_SIZE / 2, BOX_CENTRE + BOX_SIZE / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (lo - cam_pos) / dirs, (hi - cam_pos) / dirs
    t_near = np.nanmax(np.minimum(t1, t2), axis=1)
    t_far = np.nanmin(np.maximum(t1, t2), axis=1)
    t_box = np.where((t_near <= t_far) & (t_near > 0), t_near, np.inf)
    t = np.minimum(t_plane, t_box)  # along a z = 1 camera ray, t is the planar depth itself
    depth = np.where(np.isfinite(t), t, 0.0)  # Newton writes 0 for a miss
    return depth.reshape(H, W)


def _box_distance(points: np.ndarray) -> np.ndarray:
    """Distance of points to the box surface [m]."""
    q = np.abs(points - BOX_CENTRE) - BOX_SIZE / 2
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=-1)
    inside = np.minimum(q.max(axis=-1), 0.0)
    return np.abs(outside + inside)


@pytest.fixture(scope="module")
def scene():
    cam_pos = np.array(CAMERA_POS)
    cam_rot = _rot(CAMERA_ROT)
    k = _intrinsics()
    depth = torch.tensor(_render_depth(cam_pos, cam_rot, k), dtype=torch.float32)[None, ..., None]  # (1, H, W, 1)
    rays = pixel_rays(torch.tensor(k, dtype=torch.float32)[None], H, W)
    points_cam, valid = depth_to_points(depth, rays)
    pos, rot = torch.tensor(cam_pos, dtype=torch.float32), torch.tensor(cam_rot, dtype=torch.float32)
    return {"points_env": camera_to_env(points_cam, pos, rot), "points_cam": points_cam, "valid": valid, "pos": pos,
            "rot": rot, "k": k}


def test_unprojected_depth_lies_on_the_rendered_surfaces(scene):
    pts = scene["points_env"][0][scene["valid"][0]].numpy()
    assert len(pts) > 0.5 * W * H
    on_table = np.abs(pts[:, 2]) < 1e-4
    on_box = _box_distance(pts) < 1e-4
    assert np.all(on_table | on_box)  # every return is on the table plane or the box
    assert on_box.sum() > 50


def test_box_points_are_on_its_camera_facing_faces_and_the_table_is_gone(scene):
    crop_min = torch.tensor([-0.2, -0.3, -0.05])
    crop_max = torch.tensor([0.2, 0.3, 0.4])
    keep = scene["valid"] & workspace_mask(scene["points_env"], crop_min, crop_max, table_z=0.003)
    pts = scene["points_env"][0][keep[0]].numpy()
    assert len(pts) > 50
    assert _box_distance(pts).max() < 1e-4  # only the box is left: the table is gone
    assert pts[:, 2].min() > 0.003
    # which faces: the camera at +x, above, centred in y sees the top and the +x face, never the -x face
    rel = (pts - BOX_CENTRE) / (BOX_SIZE / 2)
    top, front, back = rel[:, 2] > 0.999, rel[:, 0] > 0.999, rel[:, 0] < -0.999
    assert top.sum() > 20 and front.sum() > 20 and back.sum() == 0


def test_camera_frame_round_trip(scene):
    back = env_to_camera(scene["points_env"], scene["pos"], scene["rot"])
    assert torch.allclose(back, scene["points_cam"], atol=1e-5)


def test_pixel_rays_use_pixel_centres():
    k = torch.tensor(_intrinsics(4, 2))[None]
    rays = pixel_rays(k, 2, 4)
    assert rays.shape == (1, 8, 3)
    f = float(k[0, 0, 0])
    assert rays[0, 0].tolist() == pytest.approx([-1.5 / f, -0.5 / f, 1.0])  # pixel (0, 0) centre at (0.5, 0.5)
    assert rays[0, 7].tolist() == pytest.approx([1.5 / f, 0.5 / f, 1.0])


def test_invalid_depth_is_dropped():
    depth = torch.tensor([[[0.0, float("inf"), float("nan"), 0.5]]])  # (1, 1, 4)
    rays = torch.ones(1, 4, 3)
    points, valid = depth_to_points(depth, rays)
    assert valid.tolist() == [[False, False, False, True]]
    assert torch.isfinite(points).all() and points[0, :3].abs().sum() == 0


def test_cropping_removes_everything_outside_the_box():
    gen = torch.Generator().manual_seed(0)
    pts = torch.rand(3, 5000, 3, generator=gen) * 2 - 1  # (E, P, 3) in [-1, 1]^3
    lo, hi = torch.tensor([-0.2, -0.1, 0.0]), torch.tensor([0.3, 0.4, 0.5])
    keep = workspace_mask(pts, lo, hi, table_z=0.1)
    out, mask = subsample_points(pts, keep, 700, generator=gen)
    assert mask.all()
    assert ((out >= lo) & (out <= hi)).all() and (out[..., 2] > 0.1).all()
    # and nothing inside was lost on the way: the mask is exactly the box test
    inside = ((pts >= lo) & (pts <= hi)).all(-1) & (pts[..., 2] > 0.1)
    assert torch.equal(keep, inside)


def test_subsample_count_is_exact_and_without_replacement_when_enough():
    gen = torch.Generator().manual_seed(1)
    pts = torch.arange(2 * 50, dtype=torch.float32).reshape(2, 50, 1)
    valid = torch.zeros(2, 50, dtype=torch.bool)
    valid[0, :40] = True
    valid[1, 10:50:2] = True  # 20 valid
    out, mask = subsample_points(pts, valid, 16, generator=gen)
    assert out.shape == (2, 16, 1) and mask.all()
    for e in range(2):
        chosen = out[e, :, 0].long() - 50 * e
        assert valid[e, chosen].all()
        assert len(set(chosen.tolist())) == 16  # no repeats while there are enough valid points


def test_subsample_resamples_with_replacement_when_fewer():
    gen = torch.Generator().manual_seed(2)
    pts = torch.arange(30, dtype=torch.float32).reshape(1, 30, 1)
    valid = torch.zeros(1, 30, dtype=torch.bool)
    valid[0, [3, 7, 11, 29]] = True
    out, mask = subsample_points(pts, valid, 100, generator=gen)
    assert out.shape == (1, 100, 1) and mask.all()
    got = out[0, :, 0].long().tolist()
    assert set(got) == {3, 7, 11, 29}  # only valid points, and every one of them
    assert max(got.count(i) for i in (3, 7, 11, 29)) > 25  # repeats: drawn with replacement


def test_no_valid_point_gives_zeros_and_a_false_mask():
    pts = torch.rand(2, 10, 3) + 1.0
    valid = torch.zeros(2, 10, dtype=torch.bool)
    valid[1, 4] = True
    out, mask = subsample_points(pts, valid, 8)
    assert out.shape == (2, 8, 3)
    assert not mask[0].any() and out[0].abs().sum() == 0
    assert mask[1].all() and torch.allclose(out[1], pts[1, 4].expand(8, 3))
    cloud = visual_channels(out)
    assert point_mask(cloud).tolist() == mask.tolist()  # padding is recognisable downstream
    with pytest.raises(ValueError, match="num_points"):
        subsample_points(pts, valid, 0)


def test_noise_has_the_configured_relative_spread():
    gen = torch.Generator().manual_seed(3)
    pts = torch.tensor([0.1, -0.2, 0.6]).expand(4, 20000, 3).clone()
    noisy = multiplicative_noise(pts, 0.01, generator=gen)
    rel = noisy / pts - 1.0
    assert rel.std(dim=(0, 1)).tolist() == pytest.approx([0.01] * 3, rel=0.03)
    assert rel.mean().abs() < 5e-4
    assert torch.equal(multiplicative_noise(pts, 0.0), pts)
    assert multiplicative_noise(torch.zeros(1, 5, 3), 0.1).abs().sum() == 0  # padding stays zero


def test_channels_layout():
    vis = visual_channels(torch.ones(2, 3, 3))
    assert vis.shape == (2, 3, 5) and vis[..., 3:].abs().sum() == 0
    tac = tactile_channels(torch.full((2, 4, 4), 0.5))
    assert tac.shape == (2, 4, 5) and (tac[..., 4] == 1).all() and (tac[..., 3] == 0.5).all()


def test_surface_samplers():
    rng = np.random.default_rng(0)
    size = np.array([0.04, 0.1, 0.02])
    p, n = sample_box_surface(size, 4000, rng)
    q = np.abs(p) - size / 2
    assert np.abs(q.max(axis=1)).max() < 1e-12  # on the surface
    assert np.allclose(np.linalg.norm(n, axis=1), 1.0) and np.all((p * n).sum(1) > 0)  # outward
    # faces drawn by area: the two 0.04 x 0.1 faces hold 2 * 0.004 of the 0.0136 m^2
    assert np.mean(np.abs(n[:, 2]) > 0.5) == pytest.approx(0.008 / 0.0136, abs=0.03)
    r, length = 0.02, 0.1
    p, n = sample_capsule_surface(r, length, "Z", 4000, rng)
    axial = np.clip(p[:, 2], -length / 2, length / 2)
    dist = np.linalg.norm(p - np.stack([np.zeros_like(axial), np.zeros_like(axial), axial], 1), axis=1)
    assert np.allclose(dist, r, atol=1e-9)
    assert np.all((n * (p - np.stack([0 * axial, 0 * axial, axial], 1))).sum(1) > 0)


def test_cfg_errors_name_the_field():
    PointCloudCfg().validate_config()
    with pytest.raises(PointCloudCfgError, match="crop box is empty along x"):
        PointCloudCfg(crop_min=(0.1, -0.3, 0.0), crop_max=(0.1, 0.3, 0.4)).validate_config()
    with pytest.raises(PointCloudCfgError, match="num_points must be >= 1"):
        PointCloudCfg(num_points=0).validate_config()
    with pytest.raises(PointCloudCfgError, match="source must be"):
        PointCloudCfg(source="lidar").validate_config()
    with pytest.raises(PointCloudCfgError, match="not above the table"):
        PointCloudCfg(crop_max=(0.2, 0.3, 0.002)).validate_config()
    with pytest.raises(PointCloudCfgError, match="noise_std"):
        PointCloudCfg(noise_std=-0.1).validate_config()


def test_visibility_check_sees_the_default_box_and_nothing_from_a_camera_facing_away():
    cfg, cam = PointCloudCfg(), WorkspaceCameraCfg()
    k = _intrinsics(cam.width, cam.height)
    seen = crop_box_visibility(cfg.crop_min, cfg.crop_max, 0.003, CAMERA_POS, _rot(CAMERA_ROT), k, cam.width,
                               cam.height, *cam.spawn.clipping_range)
    assert seen > 0.9  # the default camera covers the default workspace
    up = _rot(look_at_quat_xyzw(CAMERA_POS, (0.35, 0.0, 2.0), up=(1.0, 0.0, 0.0)))  # looking at the ceiling
    assert crop_box_visibility(cfg.crop_min, cfg.crop_max, 0.003, CAMERA_POS, up, k, cam.width, cam.height) == 0.0


def test_camera_and_tactile_share_one_frame_constant():
    from vt_refine.tasks.assembly.assembly_env_cfg import AssemblySceneCfg

    scene = AssemblySceneCfg(num_envs=1, env_spacing=2.5)
    assert tuple(scene.camera.offset.pos) == tuple(scene.tactile.output_frame_pos) == CAMERA_POS
    assert tuple(scene.camera.offset.rot) == tuple(scene.tactile.output_frame_rot) == CAMERA_ROT
    assert scene.camera.offset.convention == "ros"  # OpenCV axes, as the tactile frame


def test_ray_box_hit_preselects_exactly_the_pixels_that_can_land_in_the_box(scene):
    from vt_refine.tasks.assembly.mdp.point_cloud import ray_box_hit

    lo, hi = torch.tensor([-0.05, -0.2, 0.003]), torch.tensor([0.15, 0.0, 0.3])
    rays_env = pixel_rays(torch.tensor(scene["k"], dtype=torch.float32)[None], H, W) @ scene["rot"].T
    hit = ray_box_hit(scene["pos"], rays_env, lo, hi, near=0.05, far=2.0)[0]
    kept = scene["valid"][0] & workspace_mask(scene["points_env"], lo, hi, table_z=0.003)[0]
    assert kept.any() and not (kept & ~hit).any()  # no pixel that lands in the box is skipped
    assert 0.1 < hit.float().mean() < 0.9  # and the rest of the image is
    assert not ray_box_hit(scene["pos"], rays_env, lo, hi, near=0.05, far=0.1).any()  # box beyond the far plane
