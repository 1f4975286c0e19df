"""Configuration of :class:`~.sensor.PiezoTactileSensor`, the simulated FlexiTac pads of the ALOHA twin."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial.transform import Rotation

from isaaclab.sensors import SensorBaseCfg
from isaaclab.utils import configclass

from vt_refine.assets.aloha import PAD_BODY_NAMES, PAD_SIZE

from .model import TaxelModelCfg, TaxelModelError
from .normalization import TactileNormalizationCfg
from .realism import TactileRealismCfg
from .taxel_layout import TaxelLayoutError, make_taxel_grid

if TYPE_CHECKING:
    from .sensor import PiezoTactileSensor

__all__ = ["DEFAULT_CAMERA_POS", "DEFAULT_CAMERA_ROT", "PiezoTactileSensorCfg", "PiezoTactileSensorError",
           "look_at_quat_xyzw"]


class PiezoTactileSensorError(ValueError):
    """The tactile sensor cannot be built or read as configured (the message names the cfg field)."""


def look_at_quat_xyzw(eye, target, up=(0.0, 0.0, 1.0)) -> tuple[float, float, float, float]:
    """Orientation (x, y, z, w) of a camera at ``eye`` looking at ``target`` in the OpenCV/ROS optical
    convention: +z forward, +x right, +y down in the image."""
    forward = np.asarray(target, dtype=np.float64) - np.asarray(eye, dtype=np.float64)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(up, dtype=np.float64))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return tuple(float(v) for v in Rotation.from_matrix(np.stack([right, down, forward], axis=1)).as_quat())


_DEFAULT_CAMERA_EYE = (0.9, 0.0, 0.7)
_DEFAULT_CAMERA_TARGET = (0.0, 0.0, 0.1)
DEFAULT_CAMERA_POS: tuple[float, float, float] = _DEFAULT_CAMERA_EYE
"""(inferred) Default output frame origin in the env frame [m]: the twin's default viewpoint, looking at the
workspace above the table centre. Set it to the scene camera's pose (the paper's cloud is in the camera frame)."""
DEFAULT_CAMERA_ROT: tuple[float, float, float, float] = look_at_quat_xyzw(_DEFAULT_CAMERA_EYE, _DEFAULT_CAMERA_TARGET)
"""Default output frame orientation (x, y, z, w) in the env frame: OpenCV optical axes looking at the table."""


@configclass
class PiezoTactileSensorCfg(SensorBaseCfg):
    """Four FlexiTac pads (12 x 32 taxels, 2 mm pitch) on the ALOHA twin's fingers, touching the parts.

    The sensor reads the pad link states of the robot articulation and the root states of the target rigid
    objects through Isaac Lab's asset data (backend-agnostic: Newton and PhysX), and the target meshes once
    from the stage.
    """

    class_type: type[PiezoTactileSensor] | str = "{DIR}.sensor:PiezoTactileSensor"

    prim_path: str = "{ENV_REGEX_NS}/Robot"
    """Prim path (expression) of the robot articulation carrying the pads; it also sets the env count."""

    robot_asset_name: str = "robot"
    """Scene key of the robot :class:`~isaaclab.assets.Articulation`."""

    pad_body_names: tuple[str, ...] = PAD_BODY_NAMES
    """Pad links of the robot, in sensor order (left arm left/right finger, right arm left/right finger)."""

    pad_size: tuple[float, float, float] = PAD_SIZE
    """Pad box edge lengths along the pad link's x, y, z [m]; the thinnest axis is the pad normal."""

    pad_normal_axis: int | None = None
    """Index of the pad normal axis in the pad link frame; None picks the thinnest axis of ``pad_size``."""

    pad_face_signs: tuple[int, ...] = (-1, +1, -1, +1)
    """Which face of each pad touches the object: +1 the face on the +normal side, -1 the other. The twin's
    left fingers sit on the +y side of the gripper, so their pads touch with the -y face, and vice versa."""

    pad_center_offsets: tuple[tuple[float, float, float], ...] | None = None
    """Pad box centre in each pad link frame [m], one per pad; None: the boxes are centred on the links."""

    rows: int = 12
    """Taxel rows per pad (along the shorter in-plane pad side)."""

    cols: int = 32
    """Taxel columns per pad (along the longer in-plane pad side)."""

    pitch: float = 0.002
    """Taxel centre spacing [m]."""

    target_asset_names: tuple[str, ...] = ("plug", "socket")
    """Scene keys of the contact targets (:class:`~isaaclab.assets.RigidObject`), in target-index order."""

    target_prim_paths: tuple[str, ...] | None = None
    """Prim path expressions of the targets' rigid bodies, one per target, read for their mesh (the first
    UsdGeom.Mesh under the prim, else the first primitive shape). None: each target asset's ``prim_path``."""

    k_n: float = 150.0
    """Normal stiffness of a taxel [N/m]. The paper's 1.0 is in its simulator's units; 150 N/m makes the summed
    taxel force of a pad match its finger's contact force in this twin (4.4 N squeeze -> 4.4 N summed, measured
    by tests/test_assembly_env.py). Fit a real pad with scripts/calibrate_tactile.py."""

    k_d: float = 0.45
    """Normal damping of a taxel [N s/m]: the paper's k_d / k_n ratio (3 ms) at this k_n."""

    f_max: float = 10.0
    """Saturation force of a taxel [N] (the FlexiTac range ends at 10 N)."""

    query_margin: float = 0.01
    """Deepest penetration reported [m]; also the slack of the bounding-sphere cull."""

    sign_method: str = "normal"
    """Inside test of the mesh query: 'normal' (watertight meshes, fast), 'winding', 'ray_vote', 'parity'."""

    normalization: TactileNormalizationCfg = TactileNormalizationCfg(tau=0.15, s_max_fixed=0.15)
    """Max-or-fixed normalisation applied to the readings (shared with the real sensor); tau = fixed scale = the
    force of a taxel pressed 1 mm at k_n [N], so light touches keep their absolute level."""

    realism: TactileRealismCfg = TactileRealismCfg()
    """Noise, gain spread, dead taxels, quantisation, 23 Hz sample-and-hold; all off by default."""

    realism_seed: int | None = None
    """Seed of the realism random stream; None draws from torch's global stream."""

    output_frame_prim_path: str | None = None
    """Prim (expression, may hold ``{ENV_REGEX_NS}``) whose frame the tactile points are expressed in, e.g. the
    camera prim (USD cameras use OpenGL axes: -z forward, +y up). Must be static in its env. None: use
    ``output_frame_pos``/``output_frame_rot``."""

    output_frame_pos: tuple[float, float, float] = DEFAULT_CAMERA_POS
    """Output frame origin in the env frame [m] (used when ``output_frame_prim_path`` is None)."""

    output_frame_rot: tuple[float, float, float, float] = DEFAULT_CAMERA_ROT
    """Output frame orientation (x, y, z, w) in the env frame (used when ``output_frame_prim_path`` is None)."""

    def model_cfg(self, device: str) -> TaxelModelCfg:
        """The :class:`TaxelModelCfg` these settings describe, on ``device``."""
        return TaxelModelCfg(k_n=self.k_n, k_d=self.k_d, f_max=self.f_max, query_margin=self.query_margin,
                             sign_method=self.sign_method, device=device)

    def taxel_layout(self) -> np.ndarray:
        """Taxel centres in the pad link frames [m], array of shape (P, rows, cols, 3).

        Raises:
            PiezoTactileSensorError: naming the field when the grid does not fit or a field is malformed.
        """
        num_pads = len(self.pad_body_names)
        if num_pads == 0:
            raise PiezoTactileSensorError("PiezoTactileSensorCfg.pad_body_names is empty; name the pad links.")
        if len(self.pad_face_signs) != num_pads:
            raise PiezoTactileSensorError(
                f"PiezoTactileSensorCfg.pad_face_signs has {len(self.pad_face_signs)} entries but pad_body_names "
                f"has {num_pads}; give one face sign (+1/-1) per pad."
            )
        offsets = np.zeros((num_pads, 3)) if self.pad_center_offsets is None else np.asarray(self.pad_center_offsets)
        if offsets.shape != (num_pads, 3):
            raise PiezoTactileSensorError(
                f"PiezoTactileSensorCfg.pad_center_offsets must hold one (x, y, z) per pad ({num_pads}); "
                f"got shape {offsets.shape}."
            )
        grids = []
        for pad, sign in enumerate(self.pad_face_signs):
            try:
                positions, _ = make_taxel_grid(self.pad_size, self.rows, self.cols, self.pitch, face_sign=sign,
                                               normal_axis=self.pad_normal_axis)
            except TaxelLayoutError as error:
                raise PiezoTactileSensorError(f"PiezoTactileSensorCfg (pad {pad}): {error}") from None
            grids.append(positions + offsets[pad])
        return np.stack(grids).reshape(num_pads, self.rows, self.cols, 3)

    def validate_config(self) -> None:
        """Check the fields that can be checked without a stage (run by Isaac Lab's ``validate``)."""
        self.taxel_layout()
        try:
            self.model_cfg("cpu").validate()
        except TaxelModelError as error:
            raise PiezoTactileSensorError(str(error).replace("TaxelModelCfg", "PiezoTactileSensorCfg")) from None
        if len(self.target_asset_names) == 0:
            raise PiezoTactileSensorError(
                "PiezoTactileSensorCfg.target_asset_names is empty; name the contact targets."
            )
        if self.target_prim_paths is not None and len(self.target_prim_paths) != len(self.target_asset_names):
            raise PiezoTactileSensorError(
                f"PiezoTactileSensorCfg.target_prim_paths has {len(self.target_prim_paths)} entries but "
                f"target_asset_names has {len(self.target_asset_names)}; give one prim path per target (or None)."
            )
        rot = np.asarray(self.output_frame_rot, dtype=np.float64)
        if rot.shape != (4,) or abs(np.linalg.norm(rot) - 1.0) > 1e-3:
            raise PiezoTactileSensorError(
                "PiezoTactileSensorCfg.output_frame_rot must be a unit quaternion (x, y, z, w); "
                f"got {self.output_frame_rot}."
            )
