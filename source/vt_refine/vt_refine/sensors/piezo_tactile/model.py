"""Batched penetration-based (Kelvin-Voigt) taxel force model, free of Isaac Lab.

Legend: E envs, P pads per env, R x C taxel grid per pad, N = R * C taxels per pad, T contact targets
per env, V mesh vertices, F mesh triangles.

For each taxel i (TacSL's model, as used by VT-Refine):
    f_i = clamp(k_n * d_i + k_d * ddot_i, 0, f_max)
with d_i the penetration depth of the taxel point into the deepest contact target (signed closest-point
query on the target mesh) and ddot_i its rate along the contact normal, computed from the taxel velocity
``w_pad x (R_pad x_local) + v_pad`` relative to the target surface velocity ``v_t + w_t x r``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import trimesh
import warp as wp

from .kernels import SIGN_METHODS, pad_near_target_kernel, taxel_force_kernel

__all__ = [
    "TaxelForceModel",
    "TaxelModelCfg",
    "TaxelModelError",
    "TaxelState",
    "as_trimesh",
    "make_tactile_points",
    "points_to_frame",
    "quat_rotate_inverse_xyzw",
]

logger = logging.getLogger(__name__)


class TaxelModelError(ValueError):
    """Invalid configuration or input of the taxel model (the message names the offending field)."""


@dataclass
class TaxelModelCfg:
    """Hyper-parameters of the Kelvin-Voigt taxel model."""

    k_n: float = 1.0
    """Normal stiffness [N/m]. Paper value 1.0 (TacSL's units); fit it with :mod:`.calibration`."""

    k_d: float = 3.0e-3
    """Normal damping [N s/m]. Paper value 3e-3."""

    f_max: float = 10.0
    """Saturation force per taxel [N]; the FlexiTac reads 0.2 to 10 N."""

    query_margin: float = 0.01
    """Deepest penetration the mesh query reports [m]; also the slack of the bounding-sphere cull. A taxel
    deeper than this inside a target reads zero (a working contact solver never lets a pad sink 1 cm)."""

    sign_method: str = "normal"
    """Inside test of the mesh query: 'normal' (fast; watertight meshes), 'winding' (robust to holes,
    slower), 'ray_vote' or 'parity'."""

    cull: bool = True
    """Skip a target for a taxel outside the target's bounding sphere (+ margin) before the mesh query."""

    device: str = "cpu"
    """Torch/Warp device of the buffers and the kernel launch ('cpu', 'cuda', 'cuda:0', ...)."""

    def validate(self) -> None:
        """Raise :class:`TaxelModelError` naming the first invalid field."""
        for name in ("k_n", "k_d"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0.0:
                raise TaxelModelError(f"TaxelModelCfg.{name} must be a finite value >= 0; got {value!r}.")
        if not self.f_max > 0.0:
            raise TaxelModelError(
                f"TaxelModelCfg.f_max must be > 0 [N] (use float('inf') for no cap); got {self.f_max!r}."
            )
        if not np.isfinite(self.query_margin) or self.query_margin <= 0.0:
            raise TaxelModelError(
                f"TaxelModelCfg.query_margin must be a positive depth [m]; got {self.query_margin!r}."
            )
        if self.sign_method not in SIGN_METHODS:
            raise TaxelModelError(
                f"TaxelModelCfg.sign_method must be one of {sorted(SIGN_METHODS)}; got {self.sign_method!r}."
            )


@dataclass
class TaxelState:
    """Outputs of :meth:`TaxelForceModel.compute`, torch views of the model's reused buffers (they are
    overwritten by the next call: ``clone()`` what you keep)."""

    force: torch.Tensor
    """Tensor of shape (E, P, R, C): normal force per taxel [N]."""
    depth: torch.Tensor
    """Tensor of shape (E, P, R, C): penetration depth [m], 0 without contact."""
    depth_rate: torch.Tensor
    """Tensor of shape (E, P, R, C): depth rate along the contact normal [m/s], > 0 when pressing in."""
    contact: torch.Tensor
    """Bool tensor of shape (E, P, R, C): taxel inside a target."""
    contact_normal_w: torch.Tensor
    """Tensor of shape (E, P, N, 3): unit normal out of the touched surface (world), 0 without contact."""
    taxel_pos_w: torch.Tensor
    """Tensor of shape (E, P, N, 3): taxel positions in the world frame [m]."""
    target_index: torch.Tensor
    """Int32 tensor of shape (E, P, N): index of the touched target in [0, T), -1 when none."""


def as_trimesh(mesh: trimesh.Trimesh | tuple[np.ndarray, np.ndarray], name: str = "target_meshes") -> trimesh.Trimesh:
    """Turn a trimesh or a ``(vertices (V, 3), faces (F, 3))`` pair into a welded :class:`trimesh.Trimesh`.

    Vertices are merged by position because the pseudo-normal inside test needs shared edges.

    Raises:
        TaxelModelError: naming ``name`` when the geometry is empty, not finite or badly indexed.
    """
    if isinstance(mesh, trimesh.Trimesh):
        vertices, faces = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    elif isinstance(mesh, (tuple, list)) and len(mesh) == 2:
        vertices, faces = np.asarray(mesh[0], dtype=np.float64), np.asarray(mesh[1])
    else:
        raise TaxelModelError(
            f"{name}: expected a trimesh.Trimesh or a (vertices, faces) pair; got {type(mesh).__name__}."
        )
    if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) < 3:
        raise TaxelModelError(f"{name}: vertices must have shape (V >= 3, 3); got {vertices.shape}.")
    if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
        raise TaxelModelError(f"{name}: faces must be triangles of shape (F >= 1, 3); got {faces.shape}.")
    if not np.all(np.isfinite(vertices)):
        raise TaxelModelError(f"{name}: vertices contain NaN or inf.")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise TaxelModelError(
            f"{name}: face indices must lie in [0, {len(vertices)}); got [{faces.min()}, {faces.max()}]."
        )
    return trimesh.Trimesh(vertices=vertices, faces=faces, process=True)


def _torch_device(device: str | torch.device) -> torch.device:
    torch_device = torch.device(device)
    if torch_device.type == "cuda" and torch_device.index is None:
        torch_device = torch.device("cuda", torch.cuda.current_device())
    return torch_device


class TaxelForceModel:
    """Batched Kelvin-Voigt taxel model for E envs x P pads x N taxels against T mesh targets.

    Buffers are allocated once for ``num_envs`` envs and reused by every :meth:`compute` call.

    Args:
        cfg: Model hyper-parameters (and device).
        taxel_pos_local: Taxel centres in each pad body frame [m], array of shape (P, R, C, 3), or of
            shape (P, N, 3) together with ``grid_shape=(R, C)``.
        target_meshes: T target meshes in their body frames [m]: trimesh objects or (vertices, faces)
            pairs. Pass the same object several times for targets of one type; it is built once.
        num_envs: E, the number of environments the buffers are sized for.
        grid_shape: (R, C) when ``taxel_pos_local`` is (P, N, 3).
    """

    def __init__(
        self,
        cfg: TaxelModelCfg,
        taxel_pos_local: np.ndarray | torch.Tensor,
        target_meshes: Sequence[trimesh.Trimesh | tuple[np.ndarray, np.ndarray]],
        num_envs: int,
        grid_shape: tuple[int, int] | None = None,
    ):
        cfg.validate()
        self.cfg = cfg
        if int(num_envs) != num_envs or num_envs <= 0:
            raise TaxelModelError(f"num_envs must be a positive integer; got {num_envs!r}.")
        self.num_envs = int(num_envs)
        self.torch_device = _torch_device(cfg.device)
        self.wp_device = wp.get_device(str(self.torch_device))

        layout = np.asarray(
            taxel_pos_local.detach().cpu().numpy() if isinstance(taxel_pos_local, torch.Tensor) else taxel_pos_local,
            dtype=np.float64,
        )
        if layout.ndim == 4 and layout.shape[-1] == 3:
            if grid_shape is not None and tuple(grid_shape) != layout.shape[1:3]:
                raise TaxelModelError(f"grid_shape {grid_shape} disagrees with taxel_pos_local shape {layout.shape}.")
            grid_shape = layout.shape[1:3]
            layout = layout.reshape(layout.shape[0], -1, 3)
        elif layout.ndim == 3 and layout.shape[-1] == 3:
            if grid_shape is None or int(np.prod(grid_shape)) != layout.shape[1]:
                raise TaxelModelError(
                    f"taxel_pos_local of shape {layout.shape} (P, N, 3) needs grid_shape=(R, C) with R * C = N; "
                    f"got grid_shape={grid_shape!r}."
                )
        else:
            raise TaxelModelError(f"taxel_pos_local must have shape (P, R, C, 3) or (P, N, 3); got {layout.shape}.")
        if not np.all(np.isfinite(layout)):
            raise TaxelModelError("taxel_pos_local contains NaN or inf.")
        self.grid_shape: tuple[int, int] = (int(grid_shape[0]), int(grid_shape[1]))
        self.num_pads, self.num_taxels = layout.shape[0], layout.shape[1]

        if len(target_meshes) == 0:
            raise TaxelModelError("target_meshes is empty: give at least one contact target mesh.")
        self.num_targets = len(target_meshes)
        # one wp.Mesh per distinct target geometry, shared by every env and every target using it
        self._wp_meshes: dict[int, tuple[wp.Mesh, np.ndarray, float]] = {}
        mesh_ids, centers, radii = [], [], []
        for index, mesh in enumerate(target_meshes):
            key = id(mesh)
            if key not in self._wp_meshes:
                welded = as_trimesh(mesh, name=f"target_meshes[{index}]")
                if cfg.sign_method != "winding" and not welded.is_watertight:
                    logger.warning(
                        "target_meshes[%d] is not watertight: inside tests by '%s' may be wrong; "
                        "consider TaxelModelCfg.sign_method='winding'.", index, cfg.sign_method,
                    )
                vertices = np.asarray(welded.vertices, dtype=np.float32)
                triangles = np.asarray(welded.faces, dtype=np.int32).reshape(-1)
                wp_mesh = wp.Mesh(
                    points=wp.array(vertices, dtype=wp.vec3, device=self.wp_device),
                    indices=wp.array(triangles, dtype=wp.int32, device=self.wp_device),
                    support_winding_number=cfg.sign_method == "winding",
                )
                self._wp_meshes[key] = (wp_mesh, *_bounding_sphere(np.asarray(welded.vertices)))
            wp_mesh, center, radius = self._wp_meshes[key]
            mesh_ids.append(wp_mesh.id)
            centers.append(center)
            radii.append(radius)

        dev = self.wp_device
        self._taxel_pos_local = wp.array(layout.astype(np.float32), dtype=wp.vec3, device=dev)
        self._mesh_ids = wp.array(np.asarray(mesh_ids, dtype=np.uint64), dtype=wp.uint64, device=dev)
        self._bound_center = wp.array(np.asarray(centers, dtype=np.float32), dtype=wp.vec3, device=dev)
        self._bound_radius = wp.array(np.asarray(radii, dtype=np.float32), dtype=wp.float32, device=dev)
        self._no_mask = wp.ones(self.num_envs, dtype=wp.bool, device=dev)
        self._inputs_alive: dict[str, torch.Tensor] = {}  # state tensors the recorded launches point at
        self._bound_addresses: dict[str, int] = {}
        pad_centers, pad_radii = zip(*(_bounding_sphere(layout[pad]) for pad in range(self.num_pads)))
        self._pad_bound_center = wp.array(np.asarray(pad_centers, dtype=np.float32), dtype=wp.vec3, device=dev)
        self._pad_bound_radius = wp.array(np.asarray(pad_radii, dtype=np.float32), dtype=wp.float32, device=dev)
        self._pad_near = wp.zeros((self.num_envs, self.num_pads), dtype=wp.int32, device=dev)

        shape = (self.num_envs, self.num_pads, self.num_taxels)
        self._taxel_pos_w = wp.zeros(shape, dtype=wp.vec3, device=dev)
        self._depth = wp.zeros(shape, dtype=wp.float32, device=dev)
        self._depth_rate = wp.zeros(shape, dtype=wp.float32, device=dev)
        self._normal_w = wp.zeros(shape, dtype=wp.vec3, device=dev)
        self._force = wp.zeros(shape, dtype=wp.float32, device=dev)
        self._contact = wp.zeros(shape, dtype=wp.bool, device=dev)
        self._target_index = wp.full(shape, -1, dtype=wp.int32, device=dev)

        grid = (self.num_envs, self.num_pads, *self.grid_shape)
        self.state = TaxelState(
            force=wp.to_torch(self._force).view(grid),
            depth=wp.to_torch(self._depth).view(grid),
            depth_rate=wp.to_torch(self._depth_rate).view(grid),
            contact=wp.to_torch(self._contact).view(grid),
            contact_normal_w=wp.to_torch(self._normal_w),
            taxel_pos_w=wp.to_torch(self._taxel_pos_w),
            target_index=wp.to_torch(self._target_index),
        )
        """Tensors of the latest :meth:`compute` (the same objects are returned by every call)."""
        self._record_launches()

    def _record_launches(self) -> None:
        """Pack both kernels' arguments once; each :meth:`compute` then only swaps the per-step state arrays.

        Why: at a few envs the Python cost of packing ~30 launch arguments is larger than the kernels.
        """
        e, p, t, dev = self.num_envs, self.num_pads, self.num_targets, self.wp_device
        pad_vec, pad_quat = wp.zeros((e, p), dtype=wp.vec3, device=dev), wp.zeros((e, p), dtype=wp.quat, device=dev)
        target_vec = wp.zeros((e, t), dtype=wp.vec3, device=dev)
        target_quat = wp.zeros((e, t), dtype=wp.quat, device=dev)
        self._cull_launch = wp.launch(
            pad_near_target_kernel, dim=(e, p), device=dev, record_cmd=True,
            inputs=[self._pad_bound_center, self._pad_bound_radius, pad_vec, pad_quat, target_vec, target_quat,
                    self._bound_center, self._bound_radius, 1, 0.0],
            outputs=[self._pad_near],
        )
        self._force_launch = wp.launch(
            taxel_force_kernel, dim=(e, p, self.num_taxels), device=dev, record_cmd=True,
            inputs=[self._taxel_pos_local, pad_vec, pad_quat, pad_vec, pad_vec, target_vec, target_quat, target_vec,
                    target_vec, self._mesh_ids, self._bound_center, self._bound_radius, self._no_mask, 0,
                    self._pad_near, 1, 0, 0.0, 0.0, 0.0, 0.0],
            outputs=[self._taxel_pos_w, self._depth, self._depth_rate, self._normal_w, self._force, self._contact,
                     self._target_index],
        )
        self._cull_args = {arg.label: i for i, arg in enumerate(pad_near_target_kernel.adj.args)}
        self._force_args = {arg.label: i for i, arg in enumerate(taxel_force_kernel.adj.args)}
        self._packed_cfg: tuple | None = None

    def _set_cfg_params(self) -> None:
        """Re-pack the scalar hyper-parameters when the cfg changed since the last call (e.g. a new k_n)."""
        cfg = self.cfg
        values = (int(cfg.cull), SIGN_METHODS[cfg.sign_method], float(cfg.query_margin), float(cfg.k_n),
                  float(cfg.k_d), float(cfg.f_max))
        if values == self._packed_cfg:
            return
        cfg.validate()
        cull, sign, margin, k_n, k_d, f_max = values
        self._cull_launch.set_param_at_index(self._cull_args["use_cull"], cull)
        self._cull_launch.set_param_at_index(self._cull_args["margin"], margin)
        for name, value in (("use_cull", cull), ("sign_method", sign), ("max_depth", margin), ("k_n", k_n),
                            ("k_d", k_d), ("f_max", f_max)):
            self._force_launch.set_param_at_index(self._force_args[name], value)
        self._packed_cfg = values

    @property
    def taxel_pos_local(self) -> torch.Tensor:
        """Tensor of shape (P, N, 3): taxel centres in the pad body frames [m] (a view, do not modify)."""
        return wp.to_torch(self._taxel_pos_local)

    def _bind_state(self, name: str, value: torch.Tensor, shape: tuple[int, ...], dtype) -> None:
        """Check one per-step state tensor and point the recorded launches at its memory.

        The tensor is kept alive until the next call (the launch is ordered on torch's stream). When it
        lives at the address bound last time (a reused buffer), the packed argument already is right.
        """
        if not isinstance(value, torch.Tensor):
            raise TaxelModelError(f"{name} must be a torch.Tensor of shape {shape}; got {type(value).__name__}.")
        if tuple(value.shape) != shape:
            raise TaxelModelError(f"{name} must have shape {shape}; got {tuple(value.shape)}.")
        if value.device != self.torch_device:
            raise TaxelModelError(
                f"{name} is on {value.device} but the model was built for {self.torch_device} (TaxelModelCfg.device)."
            )
        value = value.to(torch.float32).contiguous()  # no copy when it already is contiguous float32
        self._inputs_alive[name] = value
        address = value.data_ptr()
        if self._bound_addresses.get(name) == address:
            return
        array = wp.array(ptr=address, dtype=dtype, shape=shape[:-1], device=self.wp_device)
        self._force_launch.set_param_at_index(self._force_args[name], array)
        if name in self._cull_args:
            self._cull_launch.set_param_at_index(self._cull_args[name], array)
        self._bound_addresses[name] = address

    def compute(
        self,
        pad_pos_w: torch.Tensor,
        pad_quat_w: torch.Tensor,
        pad_lin_vel_w: torch.Tensor,
        pad_ang_vel_w: torch.Tensor,
        target_pos_w: torch.Tensor,
        target_quat_w: torch.Tensor,
        target_lin_vel_w: torch.Tensor,
        target_ang_vel_w: torch.Tensor,
        env_mask: torch.Tensor | None = None,
    ) -> TaxelState:
        """Evaluate every taxel of every pad of every env: one (E, P) launch culls pads far from every target,
        then one (E, P, N) launch computes all taxels (no Python loop over envs, pads or taxels).

        Args:
            pad_pos_w: Tensor of shape (E, P, 3), pad body origins [m].
            pad_quat_w: Tensor of shape (E, P, 4), pad body orientations (x, y, z, w).
            pad_lin_vel_w: Tensor of shape (E, P, 3), velocity of the pad body origins [m/s].
            pad_ang_vel_w: Tensor of shape (E, P, 3), pad angular velocities [rad/s].
            target_pos_w: Tensor of shape (E, T, 3), target body origins [m].
            target_quat_w: Tensor of shape (E, T, 4), target orientations (x, y, z, w).
            target_lin_vel_w: Tensor of shape (E, T, 3), velocity of the target body origins [m/s].
            target_ang_vel_w: Tensor of shape (E, T, 3), target angular velocities [rad/s].
            env_mask: Optional bool tensor of shape (E,); envs that are False keep their previous outputs.

        Returns:
            :attr:`state`, refreshed.
        """
        e, p, t = self.num_envs, self.num_pads, self.num_targets
        self._bind_state("pad_pos_w", pad_pos_w, (e, p, 3), wp.vec3)
        self._bind_state("pad_quat_w", pad_quat_w, (e, p, 4), wp.quat)
        self._bind_state("pad_lin_vel_w", pad_lin_vel_w, (e, p, 3), wp.vec3)
        self._bind_state("pad_ang_vel_w", pad_ang_vel_w, (e, p, 3), wp.vec3)
        self._bind_state("target_pos_w", target_pos_w, (e, t, 3), wp.vec3)
        self._bind_state("target_quat_w", target_quat_w, (e, t, 4), wp.quat)
        self._bind_state("target_lin_vel_w", target_lin_vel_w, (e, t, 3), wp.vec3)
        self._bind_state("target_ang_vel_w", target_ang_vel_w, (e, t, 3), wp.vec3)
        if env_mask is None:
            mask, use_mask = self._no_mask, 0
        else:
            if env_mask.shape != (e,) or env_mask.dtype != torch.bool or env_mask.device != self.torch_device:
                raise TaxelModelError(f"env_mask must be a bool tensor of shape ({e},) on {self.torch_device}.")
            env_mask = env_mask.contiguous()
            self._inputs_alive["env_mask"] = env_mask  # alive until the next call, like the states
            mask, use_mask = wp.from_torch(env_mask, dtype=wp.bool), 1
        self._set_cfg_params()
        self._force_launch.set_param_at_index(self._force_args["env_mask"], mask)
        self._force_launch.set_param_at_index(self._force_args["use_env_mask"], use_mask)
        # launch on torch's current stream so torch ops before/after are ordered with the kernels
        stream = wp.stream_from_torch(torch.cuda.current_stream(self.torch_device)) if self.wp_device.is_cuda else None
        self._cull_launch.launch(stream=stream)
        self._force_launch.launch(stream=stream)
        return self.state


def quat_rotate_inverse_xyzw(quat: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
    """Rotate ``vec`` by the inverse of unit quaternion ``quat`` (x, y, z, w), broadcasting leading dims.

    Args:
        quat: Tensor of shape (..., 4).
        vec: Tensor of shape (..., 3).

    Returns:
        Tensor of shape (..., 3).
    """
    # R^T v = v - 2 w (u x v) + 2 u x (u x v) for q = (u, w); kept here so this module needs no Isaac Lab
    axis, scalar = quat[..., :3], quat[..., 3:4]
    axis_cross_vec = torch.cross(axis.expand_as(vec), vec, dim=-1)
    return vec - 2.0 * scalar * axis_cross_vec + 2.0 * torch.cross(axis.expand_as(vec), axis_cross_vec, dim=-1)


def points_to_frame(points_w: torch.Tensor, frame_pos_w: torch.Tensor, frame_quat_w: torch.Tensor) -> torch.Tensor:
    """Express world points in a per-env frame: ``R_f^T (x_w - p_f)``.

    Args:
        points_w: Tensor of shape (E, ..., 3), world points [m].
        frame_pos_w: Tensor of shape (E, 3), frame origins in the world [m].
        frame_quat_w: Tensor of shape (E, 4), frame orientations in the world (x, y, z, w).

    Returns:
        Tensor of shape (E, ..., 3), the points in the frame [m].
    """
    extra = (1,) * (points_w.dim() - 2)
    num_envs = points_w.shape[0]
    relative = points_w - frame_pos_w.view(num_envs, *extra, 3)
    return quat_rotate_inverse_xyzw(frame_quat_w.view(num_envs, *extra, 4), relative)


def make_tactile_points(taxel_pos_frame: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Stack taxel positions and readings into the (x, y, z, value) points of the merged cloud.

    Args:
        taxel_pos_frame: Tensor of shape (E, P, N, 3), taxel positions in the output frame [m].
        value: Tensor of shape (E, P, R, C) with R * C = N, e.g. normalised readings.

    Returns:
        Tensor of shape (E, P * N, 4), pads in order, taxels row-major within a pad.
    """
    num_envs = taxel_pos_frame.shape[0]
    return torch.cat((taxel_pos_frame.reshape(num_envs, -1, 3), value.reshape(num_envs, -1, 1)), dim=-1)


def _bounding_sphere(vertices: np.ndarray) -> tuple[np.ndarray, float]:
    """A cheap enclosing sphere (AABB centre, farthest vertex), good enough for culling."""
    center = 0.5 * (vertices.min(axis=0) + vertices.max(axis=0))
    radius = float(np.linalg.norm(vertices - center, axis=1).max())
    return center, radius
