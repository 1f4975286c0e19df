"""Isaac Lab sensor of the simulated FlexiTac pads.

Legend: E envs, P pads (4), R x C taxel grid (12 x 32), N = R * C taxels per pad, T contact targets.

Backend-agnostic by construction: the pad link states come from the robot's
``Articulation.data.body_link_pose_w`` / ``body_link_vel_w`` and the target states from
``RigidObject.data.root_link_pose_w`` / ``root_link_vel_w``, so the same sensor runs on Newton and PhysX.
Geometry (target meshes in their body frames) is read once from the USD stage. All taxels of all pads of
all envs are evaluated by one Warp launch, after a pad-level cull launch (:class:`~.model.TaxelForceModel`).

Binding: the sensor needs the scene's asset objects. When an :class:`~isaaclab.scene.InteractiveScene`
builds the sensor (the usual case: the sensor cfg is a field of the scene cfg), the sensor finds that scene
itself and looks up ``robot_asset_name`` and ``target_asset_names``; elsewhere call :meth:`bind_scene` or
:meth:`bind_assets` before reading :attr:`data`.
"""

from __future__ import annotations

import inspect
import logging
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import trimesh
import warp as wp

import isaaclab.sim as sim_utils
from isaaclab.cloner.cloner_cfg import expand_env_regex_ns
from isaaclab.sensors.sensor_base import SensorBase

from .model import TaxelForceModel, make_tactile_points, points_to_frame
from .normalization import normalize_tactile
from .realism import TactileRealism
from .sensor_cfg import PiezoTactileSensorError
from .sensor_data import PiezoTactileSensorData

if TYPE_CHECKING:
    from isaaclab.scene import InteractiveScene

    from .sensor_cfg import PiezoTactileSensorCfg

__all__ = ["PiezoTactileSensor", "load_target_mesh"]

logger = logging.getLogger(__name__)


def _constructing_scene() -> weakref.ref | None:
    """The InteractiveScene whose ``_add_entities_from_cfg`` is constructing us, if any (looked up on the
    call stack because Isaac Lab passes a sensor only its cfg)."""
    try:
        from isaaclab.scene import InteractiveScene
    except ImportError:  # pragma: no cover - Isaac Lab always ships the scene module
        return None
    frame = inspect.currentframe()
    try:
        while frame is not None:
            candidate = frame.f_locals.get("self")
            if isinstance(candidate, InteractiveScene):
                return weakref.ref(candidate)
            frame = frame.f_back
    finally:
        del frame
    return None


def _rigid_body_prim(prim):
    """The prim carrying UsdPhysics.RigidBodyAPI for a target prim: itself, a descendant, or an ancestor."""
    from pxr import UsdPhysics

    has_body = lambda p: p.HasAPI(UsdPhysics.RigidBodyAPI)  # noqa: E731
    if has_body(prim):
        return prim
    below = sim_utils.get_first_matching_child_prim(prim.GetPath(), has_body)
    if below is not None:
        return below
    return sim_utils.get_first_matching_ancestor_prim(prim.GetPath(), has_body)


def load_target_mesh(path_expr: str, field_name: str) -> trimesh.Trimesh:
    """Read a target's collision geometry from the stage, in its rigid-body frame.

    The first UsdGeom.Mesh under the (first) prim matching ``path_expr`` is used, triangulated; when there is
    none, the first primitive shape (Cube, Sphere, Cylinder, Capsule, Cone). The mesh's pose and scale
    relative to the rigid body are applied.

    Args:
        path_expr: Prim path expression of the target (``{ENV_REGEX_NS}`` already expanded).
        field_name: Cfg field to name in errors, e.g. ``"target_prim_paths[1]"``.

    Raises:
        PiezoTactileSensorError: no prim matches, or it holds no mesh or primitive shape.
    """
    from isaaclab.utils.mesh import PRIMITIVE_MESH_TYPES, create_trimesh_from_geom_mesh, create_trimesh_from_geom_shape

    prim = sim_utils.find_first_matching_prim(path_expr)
    if prim is None or not prim.IsValid():
        raise PiezoTactileSensorError(
            f"PiezoTactileSensorCfg.{field_name} = {path_expr!r} matches no prim on the stage; point it at the "
            "target's rigid body prim (e.g. '{ENV_REGEX_NS}/Plug')."
        )
    body = _rigid_body_prim(prim) or prim
    mesh_prim = sim_utils.get_first_matching_child_prim(prim.GetPath(), lambda p: p.GetTypeName() == "Mesh")
    if mesh_prim is not None:
        mesh = create_trimesh_from_geom_mesh(mesh_prim)
    else:
        mesh_prim = sim_utils.get_first_matching_child_prim(
            prim.GetPath(), lambda p: p.GetTypeName() in PRIMITIVE_MESH_TYPES
        )
        if mesh_prim is None:
            raise PiezoTactileSensorError(
                f"PiezoTactileSensorCfg.{field_name} = {path_expr!r}: the prim '{prim.GetPath()}' has no UsdGeom.Mesh "
                f"(nor a primitive shape {PRIMITIVE_MESH_TYPES}) under it; give the target a collision mesh."
            )
        mesh = create_trimesh_from_geom_shape(mesh_prim)
    mesh.apply_scale(sim_utils.resolve_prim_scale(mesh_prim))
    pos, quat = sim_utils.resolve_prim_pose(mesh_prim, body)
    transform = np.eye(4)
    transform[:3, :3] = trimesh.transformations.quaternion_matrix((quat[3], quat[0], quat[1], quat[2]))[:3, :3]
    transform[:3, 3] = pos
    mesh.apply_transform(transform)
    return mesh


class PiezoTactileSensor(SensorBase):
    """Simulated FlexiTac pads: taxel forces, normalised readings and tactile points for every env."""

    cfg: PiezoTactileSensorCfg

    def __init__(self, cfg: PiezoTactileSensorCfg):
        self._data = PiezoTactileSensorData()
        self._scene_ref = _constructing_scene()
        self._robot: Any = None
        self._targets: list[Any] | None = None
        self._env_origins: torch.Tensor | None = None
        self._pad_body_ids: torch.Tensor | None = None
        self._model: TaxelForceModel | None = None
        self._realism: TactileRealism | None = None
        self._target_meshes: list[trimesh.Trimesh] | None = None
        super().__init__(cfg)  # runs cfg.validate(): grid fit, gains, list lengths

    def __str__(self) -> str:
        return (
            f"PiezoTactileSensor @ '{self.cfg.prim_path}': {len(self.cfg.pad_body_names)} pads x "
            f"{self.cfg.rows} x {self.cfg.cols} taxels, targets {list(self.cfg.target_asset_names)}, "
            f"k_n={self.cfg.k_n} N/m, k_d={self.cfg.k_d} N s/m, bound={self.is_bound}"
        )

    """
    Properties
    """

    @property
    def data(self) -> PiezoTactileSensorData:
        self._update_outdated_buffers()
        return self._data

    @property
    def is_bound(self) -> bool:
        """Whether the robot and target assets are known."""
        return self._robot is not None and self._targets is not None

    @property
    def num_pads(self) -> int:
        return len(self.cfg.pad_body_names)

    @property
    def num_taxels(self) -> int:
        """Taxels per pad (rows * cols)."""
        return self.cfg.rows * self.cfg.cols

    @property
    def model(self) -> TaxelForceModel | None:
        """The batched taxel model (built at initialisation)."""
        return self._model

    """
    Binding
    """

    def bind_scene(self, scene: InteractiveScene) -> None:
        """Look up the robot and targets in ``scene`` by their cfg names and use the scene's env origins."""
        available = list(scene.keys()) if hasattr(scene, "keys") else []

        def lookup(name: str, field_name: str):
            try:
                return scene[name]
            except KeyError:
                raise PiezoTactileSensorError(
                    f"PiezoTactileSensorCfg.{field_name} = {name!r} is not an entity of the scene; "
                    f"available: {available}."
                ) from None

        robot = lookup(self.cfg.robot_asset_name, "robot_asset_name")
        targets = [lookup(name, f"target_asset_names[{i}]") for i, name in enumerate(self.cfg.target_asset_names)]
        self._env_regex_ns = scene.env_regex_ns
        self.bind_assets(robot, targets, env_origins=scene.env_origins)

    def bind_assets(self, robot: Any, targets: Sequence[Any], env_origins: torch.Tensor | None = None) -> None:
        """Use these asset objects as the pad source and the contact targets.

        Args:
            robot: The :class:`~isaaclab.assets.Articulation` carrying the pad links.
            targets: One :class:`~isaaclab.assets.RigidObject` per ``target_asset_names`` entry, in order.
            env_origins: Tensor of shape (E, 3), env origins in the world [m]; None: all at the world origin.
        """
        if not hasattr(robot, "data") or not hasattr(robot.data, "body_link_pose_w"):
            raise PiezoTactileSensorError(
                f"PiezoTactileSensorCfg.robot_asset_name: {type(robot).__name__} is not an articulation "
                "(no data.body_link_pose_w)."
            )
        if len(targets) != len(self.cfg.target_asset_names):
            raise PiezoTactileSensorError(
                f"bind_assets got {len(targets)} targets for PiezoTactileSensorCfg.target_asset_names "
                f"{list(self.cfg.target_asset_names)}."
            )
        for index, target in enumerate(targets):
            if not hasattr(target, "data") or not hasattr(target.data, "root_link_pose_w"):
                raise PiezoTactileSensorError(
                    f"PiezoTactileSensorCfg.target_asset_names[{index}]: {type(target).__name__} is not a rigid "
                    "object (no data.root_link_pose_w)."
                )
        self._robot, self._targets = robot, list(targets)
        self._env_origins = env_origins
        self._pad_body_ids = None
        if self._is_initialized:
            self._build()

    """
    Operations
    """

    def reset(self, env_ids: Sequence[int] | None = None, env_mask: wp.array | None = None) -> None:
        super().reset(env_ids, env_mask)
        if self._realism is not None:
            if env_mask is not None:
                env_ids = torch.nonzero(wp.to_torch(env_mask)).flatten()
            self._realism.reset(env_ids)

    """
    Implementation
    """

    def _expand(self, path_expr: str) -> str:
        env_regex_ns = getattr(self, "_env_regex_ns", None)
        return path_expr.replace("{ENV_REGEX_NS}", env_regex_ns) if env_regex_ns else expand_env_regex_ns(path_expr)

    def _initialize_impl(self):
        super()._initialize_impl()
        cfg = self.cfg
        self._layout = cfg.taxel_layout()
        num_pads, rows, cols = self._layout.shape[:3]
        self._data = PiezoTactileSensorData(self._num_envs, num_pads, rows, cols, device=self._device)
        generator = None
        if cfg.realism_seed is not None:
            generator = torch.Generator(device=self._device).manual_seed(int(cfg.realism_seed))
        self._realism = TactileRealism(cfg.realism, self._num_envs, (num_pads, rows, cols), self._device, generator)
        self._model = None
        self._timestamp_torch = wp.to_torch(self._timestamp)
        self._timestamp_last_update_torch = wp.to_torch(self._timestamp_last_update)
        if not self.is_bound and self._scene_ref is not None and self._scene_ref() is not None:
            self.bind_scene(self._scene_ref())
        # meshes are read now when their prims are named explicitly (else from the bound assets' cfgs)
        if cfg.target_prim_paths is not None:
            self._target_meshes = [load_target_mesh(self._expand(path), f"target_prim_paths[{i}]")
                                   for i, path in enumerate(cfg.target_prim_paths)]
        if self.is_bound:
            self._build()

    def _build(self) -> None:
        """Resolve the pad links, read the target meshes and build the model (needs bound assets)."""
        cfg = self.cfg
        if self._target_meshes is None:
            paths = [target.cfg.prim_path for target in self._targets]
            self._target_meshes = [load_target_mesh(self._expand(path), f"target_asset_names[{i}] (prim {path!r})")
                                   for i, path in enumerate(paths)]
        if self._model is None:
            self._model = TaxelForceModel(cfg.model_cfg(str(self._device)), self._layout, self._target_meshes,
                                          num_envs=self._num_envs)
            # per-step pad and target states land in these fixed buffers, so the model's recorded launches
            # keep pointing at them: pad pos, quat, lin vel, ang vel (E, P, .), then the same for targets (E, T, .)
            num_envs, num_pads, num_targets = self._num_envs, self._layout.shape[0], len(self._target_meshes)
            self._staged_states = [
                torch.zeros(num_envs, count, width, device=self._device)
                for count in (num_pads, num_targets) for width in (3, 4, 3, 3)
            ]
        if self._pad_body_ids is None and getattr(self._robot, "is_initialized", True):
            body_names = list(self._robot.body_names)
            missing = [name for name in cfg.pad_body_names if name not in body_names]
            if missing:
                raise PiezoTactileSensorError(
                    f"PiezoTactileSensorCfg.pad_body_names: {missing} not found in the robot's bodies {body_names}."
                )
            self._pad_body_ids = torch.tensor([body_names.index(n) for n in cfg.pad_body_names], device=self._device)
        self._set_output_frame()

    def _set_output_frame(self) -> None:
        cfg = self.cfg
        num_envs = self._num_envs
        origins = torch.zeros(num_envs, 3, device=self._device)
        if self._env_origins is not None:
            origins = torch.as_tensor(self._env_origins, dtype=torch.float32, device=self._device).reshape(num_envs, 3)
        if cfg.output_frame_prim_path is None:
            pos = torch.tensor(cfg.output_frame_pos, dtype=torch.float32, device=self._device)
            quat = torch.tensor(cfg.output_frame_rot, dtype=torch.float32, device=self._device)
            self._data.output_frame_pos_w[:] = origins + pos
        else:
            path = self._expand(cfg.output_frame_prim_path)
            prim = sim_utils.find_first_matching_prim(path)
            if prim is None or not prim.IsValid():
                raise PiezoTactileSensorError(
                    f"PiezoTactileSensorCfg.output_frame_prim_path = {cfg.output_frame_prim_path!r} matches no prim."
                )
            pos_w, quat_w = sim_utils.resolve_prim_pose(prim)
            pos = torch.tensor(pos_w, dtype=torch.float32, device=self._device)
            quat = torch.tensor(quat_w, dtype=torch.float32, device=self._device)
            if "{ENV_REGEX_NS}" in cfg.output_frame_prim_path:
                # a static prim of the env: its pose relative to its env root holds in every env
                pos_e, quat_e = sim_utils.resolve_prim_pose(prim, self._env_root_of(prim))
                pos = torch.tensor(pos_e, dtype=torch.float32, device=self._device)
                quat = torch.tensor(quat_e, dtype=torch.float32, device=self._device)
                self._data.output_frame_pos_w[:] = origins + pos
            else:
                self._data.output_frame_pos_w[:] = pos
        self._data.output_frame_quat_w[:] = quat / quat.norm()

    def _env_root_of(self, prim):
        """The env root prim (e.g. /World/envs/env_0) above ``prim``."""
        env_ns = getattr(self, "_env_regex_ns", None) or expand_env_regex_ns("{ENV_REGEX_NS}")
        depth = len(sim_utils.split_path_expr(env_ns))
        env_root = "/" + "/".join(str(prim.GetPath()).strip("/").split("/")[:depth])
        return prim.GetStage().GetPrimAtPath(env_root)

    def _update_buffers_impl(self, env_mask: wp.array):
        if not self.is_bound:
            raise PiezoTactileSensorError(
                "PiezoTactileSensor has no assets: declare it in the InteractiveScene cfg (it then binds to "
                "PiezoTactileSensorCfg.robot_asset_name / target_asset_names) or call bind_scene(scene) / "
                "bind_assets(robot, targets) before reading data."
            )
        if self._model is None or self._pad_body_ids is None:
            self._build()
        robot_data = self._robot.data
        staged = self._staged_states
        pad_pose = robot_data.body_link_pose_w.torch[:, self._pad_body_ids]  # (E, P, 7)
        pad_vel = robot_data.body_link_vel_w.torch[:, self._pad_body_ids]  # (E, P, 6)
        staged[0].copy_(pad_pose[..., :3])
        staged[1].copy_(pad_pose[..., 3:])
        staged[2].copy_(pad_vel[..., :3])
        staged[3].copy_(pad_vel[..., 3:])
        for index, target in enumerate(self._targets):
            target_pose = target.data.root_link_pose_w.torch  # (E, 7)
            target_vel = target.data.root_link_vel_w.torch  # (E, 6)
            staged[4][:, index].copy_(target_pose[:, :3])
            staged[5][:, index].copy_(target_pose[:, 3:])
            staged[6][:, index].copy_(target_vel[:, :3])
            staged[7][:, index].copy_(target_vel[:, 3:])
        mask = wp.to_torch(env_mask)
        state = self._model.compute(*staged, env_mask=mask)
        # time since each env's previous reading drives the sample-and-hold timers; 0 for envs not updated
        elapsed = torch.where(mask, self._timestamp_torch - self._timestamp_last_update_torch, 0.0)
        reading = self._realism(state.force, elapsed)
        normalized = normalize_tactile(reading, self.cfg.normalization)
        data = self._data
        taxel_pos_frame = points_to_frame(state.taxel_pos_w, data.output_frame_pos_w, data.output_frame_quat_w)

        keep = mask.view(-1, 1, 1, 1)
        data.force_ideal.copy_(torch.where(keep, state.force, data.force_ideal))
        data.force.copy_(torch.where(keep, reading, data.force))
        data.normalized.copy_(torch.where(keep, normalized, data.normalized))
        data.depth.copy_(torch.where(keep, state.depth, data.depth))
        data.contact.copy_(torch.where(keep, state.contact, data.contact))
        data.target_index.copy_(torch.where(mask.view(-1, 1, 1), state.target_index, data.target_index))
        data.taxel_pos_w.copy_(torch.where(keep, state.taxel_pos_w, data.taxel_pos_w))
        data.taxel_pos_frame.copy_(torch.where(keep, taxel_pos_frame, data.taxel_pos_frame))
        points = make_tactile_points(data.taxel_pos_frame, data.normalized)
        data.tactile_points.copy_(points)

    def _invalidate_initialize_callback(self, event):
        super()._invalidate_initialize_callback(event)
        self._model = None
        self._pad_body_ids = None
