"""Point-cloud observation terms: the visual cloud and VT-Refine's merged visuo-tactile cloud.

Every cloud is expressed in the camera frame (OpenCV axes: +z forward, +x right, +y down), the frame of the
scene's depth camera and of the tactile sensor's output (see ``point_cloud_cfg``). Cropping and table removal
happen in the env frame (table top at z = 0), where the workspace box is defined.

Per point: visual (x, y, z, 0, 0), tactile (x, y, z, reading, 1), coordinates in metres.

Visual points come from one of two sources (``PointCloudCfg.source``):

- ``"camera"``: the depth image of the scene camera, unprojected through the camera intrinsics (what the real
  twin sees; costs one render per step).
- ``"mesh"``: surface samples of the parts and gripper links, drawn once in their body frames and moved with
  the bodies every step; samples facing away from the camera are dropped (no occlusion between objects). No
  rendering: the cheap source for GPU-scale RL.

Symbols used in shapes: E envs, P candidate points (pixels or surface samples), N visual points, T taxels.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch

from isaaclab.managers import ManagerTermBase, ObservationTermCfg
from isaaclab.utils.math import matrix_from_quat

from ..point_cloud_cfg import PointCloudCfg, PointCloudCfgError

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedRLEnv

__all__ = [
    "PointCloudCfg",
    "camera_to_env",
    "crop_box_visibility",
    "depth_to_points",
    "env_to_camera",
    "merged_point_cloud",
    "multiplicative_noise",
    "pixel_rays",
    "point_mask",
    "ray_box_hit",
    "sample_box_surface",
    "sample_capsule_surface",
    "subsample_points",
    "tactile_channels",
    "visual_channels",
    "visual_point_cloud",
    "workspace_mask",
]


# --------------------------------------------------------------------------------------------------- pure functions


def pixel_rays(intrinsics: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Camera-frame direction of every pixel centre, scaled to unit depth (z = 1).

    Pixel (row v, column u) looks through (u + 0.5, v + 0.5): the centre convention of Newton's ray field (Isaac
    Lab's ``unproject_depth`` uses the pixel corner, half a pixel off).

    Args:
        intrinsics: Tensor of shape (..., 3, 3), pinhole matrices [px].
        height, width: Image size [px].

    Returns:
        Tensor of shape (..., height * width, 3), row-major pixel order (the order of ``depth.reshape(-1)``).
    """
    device, dtype = intrinsics.device, intrinsics.dtype
    v, u = torch.meshgrid(torch.arange(height, device=device, dtype=dtype) + 0.5,
                          torch.arange(width, device=device, dtype=dtype) + 0.5, indexing="ij")
    u, v = u.reshape(-1), v.reshape(-1)
    fx, fy = intrinsics[..., 0, 0, None], intrinsics[..., 1, 1, None]
    cx, cy = intrinsics[..., 0, 2, None], intrinsics[..., 1, 2, None]
    x = (u - cx) / fx
    y = (v - cy) / fy
    return torch.stack([x, y, torch.ones_like(x)], dim=-1)


def depth_to_points(depth: torch.Tensor, rays: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unproject planar depth images into camera-frame points.

    Args:
        depth: Tensor of shape (E, H, W), (E, H, W, 1) or (E, P) (selected pixels): distance along the optical
            axis [m]; misses are 0 (Newton), inf or NaN (RTX).
        rays: Tensor of shape (E or 1, P = H * W or the selection, 3) from :func:`pixel_rays` (or those rays rotated
            into another frame: the points are then offsets from the camera in that frame).

    Returns:
        Points, Tensor of shape (E, P, 3) [m] (zeros where invalid), and their validity, bool Tensor of shape (E, P).
    """
    d = depth.reshape(depth.shape[0], -1)
    valid = torch.isfinite(d) & (d > 0)
    d = torch.where(valid, d, torch.zeros_like(d))
    return rays * d.unsqueeze(-1), valid


def camera_to_env(points: torch.Tensor, cam_pos: torch.Tensor, cam_rot: torch.Tensor) -> torch.Tensor:
    """Camera-frame points -> env frame. points (E, P, 3); cam_pos (3,) [m]; cam_rot (3, 3) camera-to-env rotation."""
    return points @ cam_rot.T + cam_pos


def env_to_camera(points: torch.Tensor, cam_pos: torch.Tensor, cam_rot: torch.Tensor) -> torch.Tensor:
    """Env-frame points -> camera frame (inverse of :func:`camera_to_env`); shapes as there."""
    return (points - cam_pos) @ cam_rot


def workspace_mask(points_env: torch.Tensor, crop_min: torch.Tensor, crop_max: torch.Tensor,
                   table_z: float) -> torch.Tensor:
    """Which env-frame points lie in the crop box and above the table.

    Args:
        points_env: Tensor of shape (E, P, 3) [m].
        crop_min, crop_max: Tensors of shape (3,), box corners [m].
        table_z: Points below this height are table (table top + margin) [m].

    Returns:
        Bool Tensor of shape (E, P).
    """
    low = torch.cat([crop_min[:2], crop_min[2:].clamp(min=table_z)])  # the table is the box's floor
    return ((points_env >= low) & (points_env <= crop_max)).all(dim=-1)


def subsample_points(points: torch.Tensor, valid: torch.Tensor, num_points: int,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform random subsample of each env's valid points to exactly ``num_points``.

    Without replacement while there are enough valid points; the slots beyond the valid count are drawn with
    replacement from them. An env with no valid point gets zeros and a False mask.

    Args:
        points: Tensor of shape (E, P, C).
        valid: Bool Tensor of shape (E, P).
        num_points: N >= 1.
        generator: Optional RNG (on the points' device).

    Returns:
        Points, Tensor of shape (E, N, C), and mask, bool Tensor of shape (E, N) (False: padding zeros).
    """
    if num_points < 1:
        raise ValueError(f"num_points must be >= 1, got {num_points}")
    num_envs, num_candidates, channels = points.shape
    device = points.device
    # random keys, valid points first: the k smallest are a uniform random subset of the valid points
    keys = torch.rand(num_envs, num_candidates, device=device, generator=generator)
    keys = torch.where(valid, keys, torch.full_like(keys, 2.0))
    k = min(num_points, num_candidates)
    order = keys.topk(k, dim=1, largest=False, sorted=True).indices  # (E, k); top-k: 4x cheaper than a full sort
    count = valid.sum(dim=1, keepdim=True)  # (E, 1); when count < N, count <= k
    slot = torch.arange(num_points, device=device).unsqueeze(0)  # (1, N)
    extra = (torch.rand(num_envs, num_points, device=device, generator=generator) * count).long()
    pick = torch.where(slot < count, slot, extra).clamp(max=k - 1)
    index = order.gather(1, pick)
    out = points.gather(1, index.unsqueeze(-1).expand(-1, -1, channels))
    mask = (count > 0).expand(num_envs, num_points)
    return out * mask.unsqueeze(-1), mask


def multiplicative_noise(points: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """x -> x (1 + e) per coordinate, e ~ N(0, std^2) (zeros stay zeros). points: Tensor of shape (E, N, 3)."""
    if std <= 0:
        return points
    noise = torch.randn(points.shape, device=points.device, dtype=points.dtype, generator=generator)
    return points * (1.0 + std * noise)


def visual_channels(points: torch.Tensor) -> torch.Tensor:
    """Visual points (x, y, z) -> (x, y, z, 0, 0). points: Tensor of shape (E, N, 3) -> Tensor of shape (E, N, 5)."""
    return torch.cat([points, points.new_zeros(points.shape[:-1] + (2,))], dim=-1)


def tactile_channels(tactile_points: torch.Tensor) -> torch.Tensor:
    """Taxel points (x, y, z, reading) -> (x, y, z, reading, 1). Tensor of shape (E, T, 4) -> (E, T, 5)."""
    return torch.cat([tactile_points, tactile_points.new_ones(tactile_points.shape[:-1] + (1,))], dim=-1)


def point_mask(cloud: torch.Tensor) -> torch.Tensor:
    """Which points of a cloud are real: padding points are all-zero (the camera centre, never a real return).

    Args:
        cloud: Tensor of shape (..., Np, C), e.g. the policy's ``point_cloud`` (E, To, Np, 5).

    Returns:
        Bool Tensor of shape (..., Np), the ``point_mask`` the diffusion policy's encoder accepts.
    """
    return cloud.abs().amax(dim=-1) > 0


def ray_box_hit(origin: torch.Tensor, directions: torch.Tensor, box_min: torch.Tensor, box_max: torch.Tensor,
                near: float = 0.0, far: float = math.inf) -> torch.Tensor:
    """Which rays origin + t d, t in [near, far], pass through an axis-aligned box (slab test).

    Args:
        origin: Tensor of shape (3,) [m].
        directions: Tensor of shape (..., 3), not necessarily unit (t is in units of their length).
        box_min, box_max: Tensors of shape (3,) [m].

    Returns:
        Bool Tensor of shape (...).
    """
    with torch.no_grad():
        inv = 1.0 / torch.where(directions.abs() < 1e-12, torch.full_like(directions, 1e-12), directions)
        t1, t2 = (box_min - origin) * inv, (box_max - origin) * inv
        t_enter = torch.minimum(t1, t2).amax(dim=-1).clamp(min=near)
        t_exit = torch.maximum(t1, t2).amin(dim=-1).clamp(max=far)
    return t_enter <= t_exit


def crop_box_visibility(crop_min, crop_max, table_z: float, cam_pos, cam_rot, intrinsics, width: int,
                        height: int, near: float = 0.0, far: float = math.inf, samples: int = 9) -> float:
    """Fraction of the crop box (above the table) that lies in the camera's view frustum (numpy, build time).

    Args:
        crop_min, crop_max: Box corners in the env frame [m].
        table_z: Only the part of the box above this height counts [m].
        cam_pos: Camera position in the env frame [m], shape (3,).
        cam_rot: Camera-to-env rotation, shape (3, 3) (OpenCV axes).
        intrinsics: Pinhole matrix [px], shape (3, 3).
        width, height: Image size [px].
        near, far: Depth range the camera reports [m].
        samples: Grid points per axis.
    """
    lo = np.asarray(crop_min, dtype=np.float64).copy()
    hi = np.asarray(crop_max, dtype=np.float64)
    lo[2] = max(lo[2], table_z)
    axes = [np.linspace(lo[i], hi[i], samples) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    cam = (grid - np.asarray(cam_pos, dtype=np.float64)) @ np.asarray(cam_rot, dtype=np.float64)
    k = np.asarray(intrinsics, dtype=np.float64)
    z = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = k[0, 0] * cam[:, 0] / z + k[0, 2]
        v = k[1, 1] * cam[:, 1] / z + k[1, 2]
    seen = (z > near) & (z < far) & (u >= 0) & (u <= width) & (v >= 0) & (v <= height)
    return float(seen.mean())


def sample_box_surface(size, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Uniform samples on the surface of a box centred at the origin: points and outward normals, each (count, 3).

    Args:
        size: Edge lengths (x, y, z) [m].
    """
    size = np.asarray(size, dtype=np.float64)
    half = 0.5 * size
    face_area = np.array([size[1] * size[2], size[0] * size[2], size[0] * size[1]])  # faces normal to x, y, z
    areas = np.repeat(face_area, 2)
    face = rng.choice(6, size=count, p=areas / areas.sum())
    axis, sign = face // 2, np.where(face % 2 == 0, 1.0, -1.0)
    points = (rng.random((count, 3)) * 2.0 - 1.0) * half
    points[np.arange(count), axis] = sign * half[axis]
    normals = np.zeros((count, 3))
    normals[np.arange(count), axis] = sign
    return points, normals


def sample_capsule_surface(radius: float, length: float, axis: str, count: int,
                           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Uniform samples on a capsule centred at the origin (cylinder ``length`` [m] along ``axis`` plus two
    hemispherical caps of ``radius`` [m]): points and outward normals, each (count, 3)."""
    side_area = 2.0 * math.pi * radius * length
    cap_area = 4.0 * math.pi * radius**2
    on_side = rng.random(count) < side_area / (side_area + cap_area)
    phi = rng.random(count) * 2.0 * math.pi
    along = (rng.random(count) - 0.5) * length
    normals = np.stack([np.zeros(count), np.cos(phi), np.sin(phi)], axis=-1)  # side: radial, axis = local x
    caps = rng.normal(size=(count, 3))
    caps /= np.linalg.norm(caps, axis=-1, keepdims=True)
    normals = np.where(on_side[:, None], normals, caps)
    centre = np.where(on_side, along, np.sign(caps[:, 0]) * 0.5 * length)
    points = radius * normals
    points[:, 0] += centre
    # local x -> the capsule axis
    perm = {"X": [0, 1, 2], "Y": [2, 0, 1], "Z": [1, 2, 0]}[axis.upper()]
    return points[:, perm], normals[:, perm]


# --------------------------------------------------------------------------------------------------- sources


def _quat_to_matrix_np(quat_xyzw) -> np.ndarray:
    return matrix_from_quat(torch.as_tensor(quat_xyzw, dtype=torch.float64)).numpy()


class _CameraSource:
    """Candidate points from the depth camera: the pixels whose ray crosses the crop box, unprojected into the env
    frame."""

    def __init__(self, cfg: PointCloudCfg, env: ManagerBasedRLEnv, camera, cam_pos: torch.Tensor,
                 cam_rot: torch.Tensor):
        if cfg.depth_data_type not in camera.cfg.data_types:
            raise PointCloudCfgError(
                f"point_cloud.depth_data_type = {cfg.depth_data_type!r} but the camera '{cfg.camera_name}' renders "
                f"{list(camera.cfg.data_types)}; add it to scene.{cfg.camera_name}.data_types")
        self.camera = camera
        self.data_type = cfg.depth_data_type
        intrinsics = camera.data.intrinsic_matrices.torch.to(env.device)
        if torch.allclose(intrinsics, intrinsics[:1].expand_as(intrinsics)):
            intrinsics = intrinsics[:1]  # one ray field for all envs
        rays = pixel_rays(intrinsics, camera.cfg.height, camera.cfg.width)  # (1 or E, H*W, 3), camera frame
        rays_env = rays @ cam_rot.T  # env-frame direction per unit of planar depth
        # the camera is static: pixels whose ray misses the crop box can never give a point (skip them every step)
        spawn = camera.cfg.spawn
        near, far = spawn.clipping_range if spawn is not None else (0.0, math.inf)
        floor = max(cfg.crop_min[2], cfg.table_top_z + cfg.table_margin)
        lo = torch.tensor([cfg.crop_min[0], cfg.crop_min[1], floor], dtype=torch.float32, device=env.device)
        hi = torch.tensor(cfg.crop_max, dtype=torch.float32, device=env.device)
        self.pixels = ray_box_hit(cam_pos, rays_env, lo, hi, near, far).any(dim=0).nonzero().squeeze(-1)  # (K,)
        self.rays_env = rays_env[:, self.pixels]  # (1 or E, K, 3)

    def candidates(self, env, cam_pos: torch.Tensor, cam_rot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        depth = self.camera.data.output[self.data_type].torch
        depth = depth.reshape(depth.shape[0], -1)[:, self.pixels]  # (E, K)
        offsets, valid = depth_to_points(depth, self.rays_env)  # env-frame offsets from the camera
        return offsets + cam_pos, valid


class _MeshSource:
    """Candidate points from surface samples of the parts and robot links, moved with their bodies every step."""

    def __init__(self, cfg: PointCloudCfg, env: ManagerBasedRLEnv):
        from vt_refine.assets.aloha import ARM_LINK_SPECS, ARM_SIDES

        rng = np.random.default_rng(cfg.mesh_seed)
        shapes = []  # (owner kind, owner key, sampler(count) -> (points, normals) in the body frame, area)
        geometry = None
        for name in cfg.mesh_part_names:
            if name not in env.scene.keys():
                raise PointCloudCfgError(f"point_cloud.mesh_part_names: no scene entity '{name}'")
            if geometry is None:
                from ..geometry import assembly_geometry

                geometry = assembly_geometry(env.cfg.task)
            mesh = getattr(geometry, name, None)
            if mesh is None:
                raise PointCloudCfgError(f"point_cloud.mesh_part_names: the task's assembly geometry has no '{name}' "
                                         "mesh (it has 'plug' and 'socket')")
            shapes.append(("part", name, _mesh_sampler(mesh, rng), float(mesh.area)))
        self.robot = env.scene["robot"] if cfg.mesh_robot_links else None
        link_specs = {spec.name: spec for spec in ARM_LINK_SPECS}
        body_ids = []
        for link in cfg.mesh_robot_links:
            if link not in link_specs:
                raise PointCloudCfgError(f"point_cloud.mesh_robot_links: unknown link {link!r}; the arm links are "
                                         f"{sorted(link_specs)}")
            for side in ARM_SIDES:
                body = f"{side}_{link}"
                if body not in self.robot.body_names:
                    raise PointCloudCfgError(f"point_cloud.mesh_robot_links: the robot has no body '{body}'")
                body_ids.append(self.robot.body_names.index(body))
                for shape in link_specs[link].shapes:
                    shapes.append(("body", len(body_ids) - 1, _shape_sampler(shape, rng), _shape_area(shape)))
        self.part_names = [name for name in cfg.mesh_part_names]
        self.body_ids = torch.tensor(body_ids, dtype=torch.long, device=env.device)

        # samples spread in proportion to area (at least one per shape), in chunks of S samples of one owner body
        # (the last one padded): one batched matmul moves them all (a pose gathered per sample costs 3x more)
        areas = np.array([s[3] for s in shapes])
        counts = np.maximum(1, np.round(cfg.mesh_num_samples * areas / areas.sum()).astype(int))
        num_owners = len(self.part_names) + len(body_ids)
        groups = [([], []) for _ in range(num_owners)]
        for (kind, key, sampler, _), count in zip(shapes, counts):
            p, n = sampler(int(count))
            owner = self.part_names.index(key) if kind == "part" else len(self.part_names) + key
            groups[owner][0].append(p)
            groups[owner][1].append(n)
        size = max(1, math.ceil(counts.sum() / (2 * num_owners)))  # padding stays below half the samples
        local, real, chunk_owner = [], [], []
        for o, (p, n) in enumerate(groups):
            p, n = np.concatenate(p), np.concatenate(n)
            for start in range(0, len(p), size):
                chunk = np.zeros((2 * size, 3))  # points then normals, in the owner's frame
                m = min(size, len(p) - start)
                chunk[:m], chunk[size : size + m] = p[start : start + m], n[start : start + m]
                local.append(chunk)
                real.append(np.arange(size) < m)
                chunk_owner.append(o)
        self.local = torch.as_tensor(np.stack(local), dtype=torch.float32, device=env.device)  # (C, 2S, 3)
        self.real = torch.as_tensor(np.concatenate(real), device=env.device)  # (C * S,), False: padding
        self.chunk_owner = torch.as_tensor(chunk_owner, dtype=torch.long, device=env.device)  # (C,)
        self.size = size
        self.visibility = cfg.mesh_visibility

    def owner_poses(self, env) -> tuple[torch.Tensor, torch.Tensor]:
        """World poses of the owners: positions (E, O, 3) [m] and quaternions (E, O, 4) (x, y, z, w)."""
        pos, quat = [], []
        for name in self.part_names:
            data = env.scene[name].data
            pos.append(data.root_pos_w.torch.unsqueeze(1))
            quat.append(data.root_quat_w.torch.unsqueeze(1))
        if self.robot is not None:
            pos.append(self.robot.data.body_pos_w.torch[:, self.body_ids])
            quat.append(self.robot.data.body_quat_w.torch[:, self.body_ids])
        return torch.cat(pos, dim=1), torch.cat(quat, dim=1)

    def candidates(self, env, cam_pos: torch.Tensor, cam_rot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pos, quat = self.owner_poses(env)
        pos = pos - env.scene.env_origins.unsqueeze(1)
        rot = matrix_from_quat(quat)[:, self.chunk_owner]  # (E, C, 3, 3)
        moved = torch.einsum("csj,ecij->ecsi", self.local, rot)  # (E, C, 2S, 3); matmul would broadcast-copy local
        num_envs = moved.shape[0]
        points = (moved[:, :, : self.size] + pos[:, self.chunk_owner].unsqueeze(2)).reshape(num_envs, -1, 3)
        real = self.real.expand(num_envs, -1)
        if self.visibility == "all":
            return points, real
        normals = moved[:, :, self.size :].reshape(num_envs, -1, 3)
        view = cam_pos - points
        cosine = (view * normals).sum(dim=-1) / view.norm(dim=-1).clamp(min=1e-9)
        if self.visibility == "facing":
            return points, real & (cosine > 0)
        # thinning by the cosine: a camera's pixels cover a surface in proportion to its projected area
        return points, real & (torch.rand_like(cosine) < cosine)


def _mesh_sampler(mesh, rng: np.random.Generator):
    import trimesh

    def sample(count: int):
        points, faces = trimesh.sample.sample_surface(mesh, count, seed=rng)
        return np.asarray(points), np.asarray(mesh.face_normals[faces])

    return sample


def _shape_area(shape) -> float:
    if shape.kind == "box":
        a, b, c = shape.size
        return 2.0 * (a * b + b * c + c * a)
    return 2.0 * math.pi * shape.radius * shape.length + 4.0 * math.pi * shape.radius**2


def _shape_sampler(shape, rng: np.random.Generator):
    rot = _quat_to_matrix_np(shape.quat)
    pos = np.asarray(shape.pos, dtype=np.float64)

    def sample(count: int):
        if shape.kind == "box":
            p, n = sample_box_surface(shape.size, count, rng)
        else:
            p, n = sample_capsule_surface(shape.radius, shape.length, shape.axis, count, rng)
        return p @ rot.T + pos, n @ rot.T

    return sample


# --------------------------------------------------------------------------------------------------- terms


class visual_point_cloud(ManagerTermBase):
    """Visual points (x, y, z, 0, 0) in the camera frame: cropped, table removed, N uniform samples, noisy.

    Settings come from ``env.cfg.point_cloud`` (:class:`PointCloudCfg`) unless the term's ``cfg`` param gives one.
    ``last_mask`` holds the latest validity mask (False where an env had no valid point and got zeros).

    Returns:
        Tensor of shape (num_envs, N, 5).
    """

    def __init__(self, cfg: ObservationTermCfg, env: ManagerBasedRLEnv):
        super().__init__(cfg, env)
        pc = cfg.params.get("cfg") or getattr(env.cfg, "point_cloud", None)
        if pc is None:
            raise PointCloudCfgError("point-cloud terms read env.cfg.point_cloud (a PointCloudCfg) or the term's "
                                     "'cfg' param; neither is set")
        pc.validate_config()
        self.pc: PointCloudCfg = pc
        device = env.device
        self.crop_min = torch.tensor(pc.crop_min, dtype=torch.float32, device=device)
        self.crop_max = torch.tensor(pc.crop_max, dtype=torch.float32, device=device)
        self.table_z = float(pc.table_top_z + pc.table_margin)
        self.cam_pos, self.cam_rot, camera = _camera_frame(pc, env)
        if pc.source == "camera":
            self.source = _CameraSource(pc, env, camera, self.cam_pos, self.cam_rot)
        else:
            self.source = _MeshSource(pc, env)
        self.tactile = None
        if pc.include_tactile:
            if pc.tactile_name not in env.scene.keys():
                raise PointCloudCfgError(f"point_cloud.include_tactile is set but the scene has no tactile sensor "
                                         f"'{pc.tactile_name}'; add it or set point_cloud.include_tactile=False")
            self.tactile = env.scene.sensors[pc.tactile_name]
        self.last_mask = torch.ones(env.num_envs, pc.num_points, dtype=torch.bool, device=device)

    def visual_points(self, env: ManagerBasedRLEnv) -> torch.Tensor:
        """Tensor of shape (num_envs, N, 3): the visual points in the camera frame [m] (zeros where masked)."""
        points, valid = self.source.candidates(env, self.cam_pos, self.cam_rot)
        keep = valid & workspace_mask(points, self.crop_min, self.crop_max, self.table_z)
        points, self.last_mask = subsample_points(points, keep, self.pc.num_points)
        points = env_to_camera(points, self.cam_pos, self.cam_rot) * self.last_mask.unsqueeze(-1)
        return multiplicative_noise(points, self.pc.noise_std)

    def __call__(self, env: ManagerBasedRLEnv, cfg: PointCloudCfg | None = None) -> torch.Tensor:
        return visual_channels(self.visual_points(env))


class merged_point_cloud(visual_point_cloud):
    """VT-Refine's merged cloud: N visual points (x, y, z, 0, 0) then the 1536 taxel points (x, y, z, reading, 1),
    all in the camera frame. With ``point_cloud.include_tactile`` False, the visual points only.

    Returns:
        Tensor of shape (num_envs, N + 1536, 5), or (num_envs, N, 5) without touch.
    """

    def __call__(self, env: ManagerBasedRLEnv, cfg: PointCloudCfg | None = None) -> torch.Tensor:
        visual = visual_channels(self.visual_points(env))
        if self.tactile is None:
            return visual
        return torch.cat([visual, tactile_channels(self.tactile.data.tactile_points)], dim=1)


def _camera_frame(pc: PointCloudCfg, env: ManagerBasedRLEnv):
    """Camera pose in the env frame (position (3,) [m], camera-to-env rotation (3, 3)) and the camera sensor
    (None when the scene has none). Refuses a camera and tactile frame that differ, and a view of nothing."""
    device = env.device
    origins = env.scene.env_origins
    camera = env.scene.sensors.get(pc.camera_name)
    tactile = env.scene.sensors.get(pc.tactile_name)
    frames = {}
    if camera is not None:
        frames["camera"] = (camera.data.pos_w.torch - origins, camera.data.quat_w_ros.torch)
    if tactile is not None and hasattr(tactile.data, "output_frame_pos_w"):
        frames["tactile"] = (tactile.data.output_frame_pos_w - origins, tactile.data.output_frame_quat_w)
    if pc.source == "camera" and camera is None:
        raise PointCloudCfgError(f"point_cloud.source is 'camera' but the scene has no camera '{pc.camera_name}'; "
                                 "add the workspace camera (scene.camera) or set point_cloud.source='mesh'")
    if not frames:
        raise PointCloudCfgError(f"point clouds are expressed in the camera frame, but the scene has neither the "
                                 f"camera '{pc.camera_name}' nor the tactile sensor '{pc.tactile_name}' to take it "
                                 "from")
    if "camera" in frames and "tactile" in frames:
        (cp, cq), (tp, tq) = frames["camera"], frames["tactile"]
        dot = (cq * tq).sum(-1).abs()
        if float((cp - tp).norm(dim=-1).max()) > 1e-4 or float(dot.min()) < 1.0 - 1e-6:
            raise PointCloudCfgError(
                f"the camera '{pc.camera_name}' (pos {cp[0].tolist()}, rot {cq[0].tolist()}, env frame, OpenCV "
                f"axes) and the tactile output frame (pos {tp[0].tolist()}, rot {tq[0].tolist()}) differ: the merged "
                "cloud needs both in one frame; set scene.tactile.output_frame_pos/rot to the camera pose "
                "(point_cloud_cfg.CAMERA_POS/CAMERA_ROT)")
    pos, quat = frames["camera"] if "camera" in frames else frames["tactile"]
    if float((pos - pos[:1]).norm(dim=-1).max()) > 1e-4:
        raise PointCloudCfgError("the camera must sit at the same pose in every env (env frame)")
    cam_pos = pos[0].to(device=device, dtype=torch.float32)
    cam_rot = matrix_from_quat(quat[0].to(device=device, dtype=torch.float32))
    if camera is not None:
        spawn = camera.cfg.spawn
        near, far = spawn.clipping_range if spawn is not None else (0.0, math.inf)
        seen = crop_box_visibility(pc.crop_min, pc.crop_max, pc.table_top_z + pc.table_margin, cam_pos.cpu().numpy(),
                                   cam_rot.cpu().numpy(), camera.data.intrinsic_matrices.torch[0].cpu().numpy(),
                                   camera.cfg.width, camera.cfg.height, near, far)
        where = (f"camera '{pc.camera_name}' at {cam_pos.tolist()} (env frame) and the crop box "
                 f"{tuple(pc.crop_min)}..{tuple(pc.crop_max)} m")
        if seen == 0.0:
            raise PointCloudCfgError(f"the {where}: the camera sees none of the box (above the table); point the "
                                     "camera at the workspace or move the box")
        if seen < 0.5:
            warnings.warn(f"the {where}: the camera sees only {100 * seen:.0f}% of the box", UserWarning, stacklevel=2)
    return cam_pos, cam_rot, camera if pc.source == "camera" else None
