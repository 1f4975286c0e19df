"""The workspace depth camera of the assembly scene and the settings of the point-cloud observations.

One camera pose (``CAMERA_POS``/``CAMERA_ROT``, env frame, OpenCV optical axes: +z forward, +x right, +y down) is
the source of truth for both clouds: the scene's depth camera is placed there and the tactile sensor expresses
its taxel points in the same frame, so visual and tactile points of the merged cloud share one frame (the
observation terms refuse to run when the two disagree).

The camera is rendered kit-less by Newton's Warp ray tracer (CPU or GPU); under Isaac Sim the RTX renderer is
picked through the same renderer presets as Isaac Lab's cartpole camera (``presets=isaacsim_rtx`` or ``rtx``).
"""

from __future__ import annotations

import math

import isaaclab.sim as sim_utils
from isaaclab.sensors import CameraCfg
from isaaclab.utils import configclass

from isaaclab_tasks.utils.presets import MultiBackendRendererCfg

from vt_refine.sensors.piezo_tactile.sensor_cfg import look_at_quat_xyzw

__all__ = [
    "CAMERA_EYE",
    "CAMERA_HFOV_DEG",
    "CAMERA_POS",
    "CAMERA_RESOLUTION",
    "CAMERA_ROT",
    "CAMERA_TARGET",
    "DEPTH_DATA_TYPES",
    "PointCloudCfg",
    "PointCloudCfgError",
    "WorkspaceCameraCfg",
]

CAMERA_EYE: tuple[float, float, float] = (0.35, 0.0, 0.60)
"""(inferred) Camera position in the env frame [m]: above the table's front edge, 0.6 m over the table top, like
the real twin's egocentric top camera looking down at the workspace between the arms."""
CAMERA_TARGET: tuple[float, float, float] = (0.0, 0.0, 0.10)
"""Point the camera looks at [m] (env frame): above the table centre, where the parts are assembled."""
CAMERA_POS: tuple[float, float, float] = CAMERA_EYE
"""Camera (and tactile output) frame origin in the env frame [m]."""
CAMERA_ROT: tuple[float, float, float, float] = look_at_quat_xyzw(CAMERA_EYE, CAMERA_TARGET)
"""Camera (and tactile output) frame orientation (x, y, z, w) in the env frame, OpenCV optical axes."""
CAMERA_HFOV_DEG: float = 65.0
"""Horizontal field of view [deg]: the workspace (0.6 m across the arms' approach axis) fills the image."""
CAMERA_RESOLUTION: tuple[int, int] = (96, 72)
"""Depth image (width, height) [px]: about 8 mm per pixel at the parts, 6912 rays per env (CPU-affordable)."""

DEPTH_DATA_TYPES = ("distance_to_image_plane", "depth")
"""Camera outputs the point terms unproject: planar depth along the optical axis [m]."""

_APERTURE_CM = 20.955  # USD camera horizontal aperture; only its ratio to the focal length matters


@configclass
class WorkspaceCameraCfg(CameraCfg):
    """The fixed depth camera looking down at the workspace (one per env, at ``CAMERA_POS``/``CAMERA_ROT``)."""

    prim_path: str = "{ENV_REGEX_NS}/WorkspaceCamera"
    # "ros" = OpenCV axes, the convention of CAMERA_ROT and of the tactile output frame
    offset: CameraCfg.OffsetCfg = CameraCfg.OffsetCfg(pos=CAMERA_POS, rot=CAMERA_ROT, convention="ros")
    data_types: list[str] = ["distance_to_image_plane"]
    spawn: sim_utils.PinholeCameraCfg = sim_utils.PinholeCameraCfg(
        focal_length=_APERTURE_CM / (2.0 * math.tan(math.radians(CAMERA_HFOV_DEG) / 2.0)),
        horizontal_aperture=_APERTURE_CM,
        clipping_range=(0.05, 2.0),  # [m]: nothing of the workspace is nearer than 0.3 m or farther than 1.2 m
    )
    width: int = CAMERA_RESOLUTION[0]
    height: int = CAMERA_RESOLUTION[1]
    # Newton Warp by default (kit-less); presets=isaacsim_rtx / rtx / ovrtx pick an RTX renderer
    renderer_cfg: MultiBackendRendererCfg = MultiBackendRendererCfg()


class PointCloudCfgError(ValueError):
    """The point-cloud settings cannot work (the message names the field)."""


@configclass
class PointCloudCfg:
    """Settings of the visual point cloud and of the merged visuo-tactile cloud (``env.point_cloud``).

    Pipeline per step: candidate points (depth pixels unprojected with the camera intrinsics, or surface samples
    of the part and gripper meshes at their current poses) -> env frame -> keep those inside the crop box and
    above the table -> uniform random subsample to ``num_points`` -> camera frame -> multiplicative Gaussian noise.
    """

    source: str = "camera"
    """Where visual points come from: "camera" (render the scene's depth camera; the paper's sensor) or "mesh"
    (sample the part and gripper surfaces at their current poses; no rendering, for GPU-scale RL)."""

    num_points: int = 1024
    """N, visual points per cloud (inferred; the paper does not state it). Fewer valid points are resampled with
    replacement; with none, the N points are zeros (see :func:`~.mdp.point_cloud.point_mask`)."""

    include_tactile: bool = True
    """Append the 1536 taxel points (x, y, z, reading, 1) after the visual points; False: visual points only."""

    crop_min: tuple[float, float, float] = (-0.20, -0.25, -0.05)
    """Lower corner of the workspace crop box in the env frame [m] (table top at z = 0): the table centre, where
    the parts rest, are lifted (socket carried at 0.11 m) and assembled, and the gripper approach from both sides."""

    crop_max: tuple[float, float, float] = (0.20, 0.25, 0.30)
    """Upper corner of the workspace crop box in the env frame [m] (the default camera sees 97% of the box)."""

    table_top_z: float = 0.0
    """Height of the table top in the env frame [m]."""

    table_margin: float = 0.003
    """Points lower than ``table_top_z + table_margin`` are the table and dropped [m]."""

    noise_std: float = 0.005
    """(inferred) Std of the multiplicative Gaussian noise on each camera-frame coordinate [fraction]: x -> x (1 + e),
    e ~ N(0, noise_std^2); 0 turns it off. At 0.6 m, 0.005 is 3 mm of depth noise (a D455 at that range)."""

    camera_name: str = "camera"
    """Scene key of the depth camera (needed by source "camera"; with "mesh" it only provides the frame)."""

    tactile_name: str = "tactile"
    """Scene key of the tactile sensor (read when ``include_tactile``)."""

    depth_data_type: str = "distance_to_image_plane"
    """Camera output read as depth: planar depth along the optical axis [m] (``"depth"`` is Isaac Lab's alias)."""

    mesh_part_names: tuple[str, ...] = ("plug", "socket")
    """Source "mesh": scene keys of the rigid parts; their meshes come from the task's assembly geometry."""

    mesh_robot_links: tuple[str, ...] = (
        "wrist_link", "gripper_link", "left_finger_link", "right_finger_link", "left_finger_pad", "right_finger_pad",
    )
    """Source "mesh": robot links (without the arm prefix, both arms) whose collision shapes are sampled."""

    mesh_num_samples: int = 4096
    """Source "mesh": surface samples over all parts and links, spread in proportion to area (drawn once); about a
    third face the camera and survive the thinning. The per-step cost grows with it."""

    mesh_visibility: str = "projected"
    """Source "mesh": which samples the camera would see. "projected": samples facing the camera, each kept with
    probability cos(angle between its normal and the view ray), so their density follows the projected area like
    a camera's pixels; "facing": every camera-facing sample; "all": every sample. Occlusion by other objects is
    not modelled: a part behind a gripper keeps its camera-facing points."""

    mesh_seed: int = 0
    """Source "mesh": seed of the surface sampling (the samples are fixed for the run)."""

    def validate_config(self) -> None:
        """Check what can be checked without a scene (run by Isaac Lab's cfg validation before the sim starts)."""
        if self.source not in ("camera", "mesh"):
            raise PointCloudCfgError(f"point_cloud.source must be 'camera' or 'mesh', got {self.source!r}")
        if int(self.num_points) < 1:
            raise PointCloudCfgError(f"point_cloud.num_points must be >= 1 (points per cloud), got {self.num_points}")
        if len(self.crop_min) != 3 or len(self.crop_max) != 3:
            raise PointCloudCfgError(f"point_cloud.crop_min/crop_max must be (x, y, z) [m], got {self.crop_min} and "
                                     f"{self.crop_max}")
        empty = [axis for axis, lo, hi in zip("xyz", self.crop_min, self.crop_max) if not lo < hi]
        if empty:
            raise PointCloudCfgError(f"point_cloud crop box is empty along {', '.join(empty)}: crop_min="
                                     f"{self.crop_min} must be below crop_max={self.crop_max} on every axis "
                                     "[m, env frame]")
        if self.crop_max[2] <= self.table_top_z + self.table_margin:
            raise PointCloudCfgError(
                f"point_cloud crop box ends at z = {self.crop_max[2]} m, not above the table (table_top_z + "
                f"table_margin = {self.table_top_z + self.table_margin} m): every point would be dropped as table")
        if self.table_margin < 0:
            raise PointCloudCfgError(f"point_cloud.table_margin must be >= 0 [m], got {self.table_margin}")
        if self.noise_std < 0:
            raise PointCloudCfgError(f"point_cloud.noise_std must be >= 0 (relative std), got {self.noise_std}")
        if self.depth_data_type not in DEPTH_DATA_TYPES:
            raise PointCloudCfgError(f"point_cloud.depth_data_type must be one of {DEPTH_DATA_TYPES} (planar depth), "
                                     f"got {self.depth_data_type!r}")
        if self.source == "mesh":
            if int(self.mesh_num_samples) < 1:
                raise PointCloudCfgError(f"point_cloud.mesh_num_samples must be >= 1, got {self.mesh_num_samples}")
            if self.mesh_visibility not in ("projected", "facing", "all"):
                raise PointCloudCfgError(f"point_cloud.mesh_visibility must be 'projected', 'facing' or 'all', got "
                                         f"{self.mesh_visibility!r}")
            if not self.mesh_part_names and not self.mesh_robot_links:
                raise PointCloudCfgError("point_cloud source 'mesh' needs mesh_part_names or mesh_robot_links")
