"""AutoMate assembly parts: their specs, the gripper's envelope, grasp sites and the assembled geometry.

The five procedural designs that build the meshes are in :mod:`.part_designs` (solid modelling in :mod:`.csg`).

The real AutoMate meshes live on NVIDIA's asset server, which is unreachable from most machines this
project runs on, so each of the five VT-Refine assemblies is rebuilt here as watertight geometry of the
same kind, the same bounding box (``ASSEMBLY_SPECS``) and the radial play measured on the published
scaled meshes (each design's ``clearance``): a peg through a 39.6 mm hole (3.3 mm), a nut on a 12.4 mm
bolt head (1.9 mm), a flanged tube into a tube (1.8 mm), a square tube over a post (2.35 mm) and a collar
whose bore is wider than every section of its shaft (3.0 mm, no seat). Real meshes can be used instead
through :mod:`vt_refine.assets.part_files`.

Units: every length is in metres, masses in kg, densities in kg/m^3. Dimensions are written in mm and
converted with ``MM``.

Frame convention (plug and socket alike):
    * z points up; a part standing upright on the table at z = 0 has its origin on the table, on the
      insertion axis (the centre of the bounding box's bottom face, except where a one-sided feature
      such as the collar's set-screw boss moves the box centre off the axis).
    * The insertion axis is the socket's +z: assembling moves the plug along -z of the socket frame.
    * The plug's assembled pose in the socket frame is identity rotation plus the translation
      (0, 0, ``assembled_plug_z``). With a hard stop (``seated``), that is the plug resting on it: the
      peg on the table through the block's hole, the nut on the bolt head, the flange on the socket tube's
      rim, the square tube on the housing. The collar has no stop; its assembled pose is only stored.

Grasp convention (see :class:`GripperEnvelope`): the scripted expert grasps each part standing upright on
the table from the side, fingers pitched 15 deg down below 40 mm, pads closing horizontally. A grasp site
keeps the pads off the table and touches the part where its width is the recorded one. In the assembled
pose the right hand (plug) clears the socket; the left hand (socket) either clears the plug too, and may
hold the socket on the table while the plug goes in (``socket_held_while_inserting``), or its fingers are
where the plug ends up (nut, collar), and it sets the socket down and lets go first.
"""

from __future__ import annotations

import hashlib
import operator
from dataclasses import dataclass
from dataclasses import replace as dataclasses_replace

import numpy as np
import trimesh

MM = 1e-3
"""Metres per millimetre."""

DEFAULT_DENSITY = 1050.0
"""ABS-like plastic [kg/m^3]."""

GRIPPER_MAX_OBJECT_WIDTH = 0.080
"""Widest object the ALOHA gripper closes on [m] (pads open to about 84 mm)."""

ROUND_GRASP_SYMMETRY = 8
"""``GraspSite.symmetry_order`` of a round section: any closing axis works; 8 gives the expert enough choices."""

ROUND_SECTIONS = 96
"""Facets per full turn of round features. A multiple of 4 (and of 6) so that round boxes are exact in
x and y; the faceting error r * (1 - cos(pi / 96)) stays below 0.014 mm up to r = 26 mm."""


class AssemblySpecError(ValueError):
    """An unknown assembly key or an out-of-range generation parameter."""


# ---------------------------------------------------------------------------------------------------
# Static description of the five assemblies
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssemblySpec:
    """The static description of one AutoMate assembly (no geometry)."""

    asset_id: str
    """AutoMate asset id, e.g. "00186"."""
    name: str
    """Snake-case name, e.g. "peg_in_hole"."""
    task_name: str
    """CamelCase name used in task ids, e.g. "PegInHole" in "VTRefine-PegInHole-Aloha"."""
    plug_bbox: tuple[float, float, float]
    """Plug bounding-box extents (x, y, z) [m]."""
    socket_bbox: tuple[float, float, float]
    """Socket bounding-box extents (x, y, z) [m]."""


def _spec(asset_id: str, name: str, task_name: str, plug_mm: tuple, socket_mm: tuple) -> AssemblySpec:
    return AssemblySpec(
        asset_id=asset_id,
        name=name,
        task_name=task_name,
        plug_bbox=tuple(round(v * MM, 7) for v in plug_mm),
        socket_bbox=tuple(round(v * MM, 7) for v in socket_mm),
    )


ASSEMBLY_SPECS: dict[str, AssemblySpec] = {
    s.asset_id: s
    for s in (
        _spec("00186", "peg_in_hole", "PegInHole", (33.0, 32.2, 74.8), (55.0, 55.2, 33.0)),
        _spec("00581", "nut_and_bolt", "NutAndBolt", (57.8, 50.3, 23.4), (45.5, 39.4, 78.8)),
        _spec("00446", "bayonet", "Bayonet", (52.3, 52.2, 105.0), (43.9, 43.9, 90.8)),
        _spec("00081", "mechanical_connector", "MechanicalConnector", (35.3, 35.3, 36.7), (47.7, 47.8, 77.7)),
        _spec("00007", "shaft_collar", "ShaftCollar", (51.1, 50.9, 39.6), (42.4, 42.3, 81.4)),
    )
}
"""The five VT-Refine assemblies, keyed by AutoMate asset id (bounding boxes from the paper)."""


def get_assembly_spec(key: str | AssemblySpec) -> AssemblySpec:
    """Look an assembly up by asset id ("00186"), name ("peg_in_hole") or task name ("PegInHole").

    The look-up ignores case. An ``AssemblySpec`` is returned unchanged.
    """
    if isinstance(key, AssemblySpec):
        return key
    wanted = str(key).strip().lower()
    for spec in ASSEMBLY_SPECS.values():
        if wanted in (spec.asset_id, spec.name.lower(), spec.task_name.lower()):
            return spec
    known = ", ".join(f"{s.asset_id} ({s.name} / {s.task_name})" for s in ASSEMBLY_SPECS.values())
    raise AssemblySpecError(f"Unknown assembly key {key!r}. Use an asset id, name or task name: {known}.")


# ---------------------------------------------------------------------------------------------------
# The space the expert's fingers take around a grasp point
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GripperEnvelope:
    """Reach of the pitched ALOHA fingers around a grasp point, which grasp sites respect [m].

    The expert approaches horizontally with the gripper pitched 15 deg down; each FlexiTac pad is 66.65 mm
    long, 26 mm tall and 3 mm thick, on an 8 mm finger, and the grasp point lies between the pads 15 mm
    ahead of their centres. Heights below are measured from the grasp point.
    """

    pad_reach_below: float = 17.5 * MM  # lowest pad corner: 13 cos 15 + 18.3 sin 15 = 17.3 mm, rounded up
    finger_rise_behind: float = 21.0 * MM  # highest finger point within 30 mm behind the grasp point
    min_center_z: float = 21.0 * MM  # lowest grasp centre on a standing part: 17.3 mm pad reach + 3 mm off the table
    hand_gap: float = 2.0 * MM  # margin kept between a hand and the other part
    max_width: float = 75.0 * MM  # widest section the pads should close on (the stroke ends at 80 mm)

    def band(self, center_z: float, part_top: float) -> tuple[float, float]:
        """z span of a standing part that the pads and the fingers behind them cover, for a grasp at ``center_z``."""
        return max(0.0, center_z - self.pad_reach_below), min(part_top, center_z + self.finger_rise_behind)


GRIPPER_ENVELOPE = GripperEnvelope()
"""The envelope the grasp sites are designed for."""


# ---------------------------------------------------------------------------------------------------
# Geometry containers
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GraspSite:
    """Where a parallel gripper should hold a part, in the part frame."""

    center: tuple[float, float, float]
    """Point midway between the two finger pads [m]."""
    closing_axis: tuple[float, float, float]
    """Unit, horizontal vector the fingers close along."""
    width: float
    """Object width across the fingers at the site [m]; below ``GRIPPER_MAX_OBJECT_WIDTH``."""
    height_range: tuple[float, float]
    """z interval of the part that the pads and fingers may cover [m]; the part is ``width`` wide over it."""
    symmetry_order: int
    """Number of equivalent closing axes under rotation about the part's z axis (2: only this axis, e.g. a
    box with unequal sides; 4: a square section; 6: a hex across flats; ``ROUND_GRASP_SYMMETRY``: round).
    The expert may close along ``closing_axis`` turned by any multiple of 360 deg / ``symmetry_order``."""

    def __post_init__(self):
        axis = np.asarray(self.closing_axis, dtype=float)
        if axis.shape != (3,) or abs(np.linalg.norm(axis) - 1.0) > 1e-6 or abs(axis[2]) > 1e-6:
            raise ValueError(f"GraspSite.closing_axis must be a horizontal unit 3-vector, got {self.closing_axis}.")
        if not 0.0 < self.width < GRIPPER_MAX_OBJECT_WIDTH:
            raise ValueError(
                f"GraspSite.width must lie in (0, {GRIPPER_MAX_OBJECT_WIDTH}) m (gripper stroke), got"
                f" {self.width:.4f} m; pick a narrower part of the shape."
            )
        lo, hi = self.height_range
        if not lo < hi:
            raise ValueError(f"GraspSite.height_range must be (low, high) with low < high, got {self.height_range}.")
        if not lo - 1e-9 <= self.center[2] <= hi + 1e-9:
            raise ValueError(
                f"GraspSite.center z={self.center[2]:.4f} m lies outside height_range {self.height_range}."
            )
        if isinstance(self.symmetry_order, bool) or not isinstance(self.symmetry_order, int) or self.symmetry_order < 1:
            raise ValueError(f"GraspSite.symmetry_order must be an int >= 1, got {self.symmetry_order!r}.")


@dataclass(frozen=True, eq=False)
class AssemblyGeometry:
    """Meshes and fit data of one plug/socket pair (frame convention in the module docstring)."""

    spec: AssemblySpec
    plug: trimesh.Trimesh
    """Plug mesh in the plug frame [m]."""
    socket: trimesh.Trimesh
    """Socket mesh in the socket frame [m]."""
    clearance: float
    """Radial play of the fit [m]: how far the plug's axis can move off the socket's when inserted."""
    assembled_plug_z: float
    """Plug origin height in the socket frame when assembled [m]."""
    insertion_depth: float
    """Travel along -z from first engagement (plug bottom level with socket top) to assembled [m]."""
    socket_height: float
    """Socket bounding-box height [m]."""
    plug_grasp: GraspSite
    """Grasp site on the plug, plug frame."""
    socket_grasp: GraspSite
    """Grasp site on the socket, socket frame."""
    plug_mass: float
    """Plug mass from volume x density [kg]."""
    socket_mass: float
    """Socket mass from volume x density [kg]."""
    yaw_symmetry: int
    """Yaw symmetry of the fit about the insertion axis: 0 = any plug yaw fits (round peg, nut or collar on
    a round shaft); n >= 1 = only yaws that are multiples of 360 deg / n fit (4: square tube; 1: keyed)."""
    seated: bool = True
    """True: the assembled pose rests on a hard stop; False: nothing stops the plug there (only the stored
    pose defines it), so a released plug slides past it."""
    socket_held_while_inserting: bool = True
    """True: the left hand's fingers at the socket grasp clear the assembled plug, so the socket may stay held
    while the plug goes in; False: they are in the plug's way, so the socket is set down and let go first."""

    def __post_init__(self):
        if isinstance(self.yaw_symmetry, bool) or not isinstance(self.yaw_symmetry, int) or self.yaw_symmetry < 0:
            raise ValueError(f"AssemblyGeometry.yaw_symmetry must be an int >= 0, got {self.yaw_symmetry!r}.")

    def assembled_plug_transform(self) -> np.ndarray:
        """Pose of the plug frame in the socket frame when assembled: array of shape (4, 4)."""
        pose = np.eye(4)
        pose[2, 3] = self.assembled_plug_z
        return pose

    def assembled_plug(self) -> trimesh.Trimesh:
        """The plug mesh in the socket frame at its assembled pose."""
        plug = self.plug.copy()
        plug.apply_translation((0.0, 0.0, self.assembled_plug_z))
        return plug


# ---------------------------------------------------------------------------------------------------
# Where hands go: shared by the procedural designs and the real-mesh loader
# ---------------------------------------------------------------------------------------------------


def band_slice(mesh: trimesh.Trimesh, z_lo: float, z_hi: float) -> np.ndarray:
    """Vertices of ``mesh``'s surface between heights z_lo < z_hi (cut edges included): array of shape (V, 3),
    empty when the mesh has no material there."""
    if z_hi <= mesh.bounds[0, 2] or z_lo >= mesh.bounds[1, 2]:
        return np.zeros((0, 3))
    band = trimesh.intersections.slice_mesh_plane(mesh, plane_normal=(0, 0, 1), plane_origin=(0, 0, z_lo))
    if len(band.faces) == 0:
        return np.zeros((0, 3))
    band = trimesh.intersections.slice_mesh_plane(band, plane_normal=(0, 0, -1), plane_origin=(0, 0, z_hi))
    return np.asarray(band.vertices)


def hand_clears(site: GraspSite, other: trimesh.Trimesh, gap: float = GRIPPER_ENVELOPE.hand_gap) -> bool:
    """Whether a hand holding a part at ``site`` keeps ``gap`` from ``other`` (a mesh in the same frame): within
    the z span the pads and fingers take, all of ``other`` lies between the pads, ``gap`` inside them."""
    env = GRIPPER_ENVELOPE
    z = site.center[2]
    points = band_slice(other, z - env.pad_reach_below - gap, z + env.finger_rise_behind + gap)
    if len(points) == 0:
        return True
    along = (points - np.asarray(site.center)) @ np.asarray(site.closing_axis)
    return bool(np.abs(along).max() <= site.width / 2 - gap)


def geometry_from_meshes(spec: AssemblySpec, plug: trimesh.Trimesh, socket: trimesh.Trimesh, clearance: float,
                         assembled_plug_z: float, plug_grasp: GraspSite, socket_grasp: GraspSite, yaw_symmetry: int,
                         seated: bool, density: float) -> AssemblyGeometry:
    """An :class:`AssemblyGeometry` from two part meshes in the frame convention: masses from the volumes, the
    socket's height and whether the left hand may keep holding it while the plug goes in."""
    socket_height = float(socket.bounds[1, 2])
    geometry = AssemblyGeometry(
        spec=spec, plug=plug, socket=socket, clearance=float(clearance), assembled_plug_z=float(assembled_plug_z),
        insertion_depth=socket_height - float(assembled_plug_z), socket_height=socket_height,
        plug_grasp=plug_grasp, socket_grasp=socket_grasp,
        plug_mass=float(plug.volume * density), socket_mass=float(socket.volume * density),
        yaw_symmetry=operator.index(yaw_symmetry), seated=bool(seated),
    )
    held = hand_clears(socket_grasp, geometry.assembled_plug())
    return dataclasses_replace(geometry, socket_held_while_inserting=held)


def mesh_digest(mesh: trimesh.Trimesh) -> str:
    """sha256 hex digest of a mesh's vertices (float64) and faces (int64)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(mesh.vertices, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(mesh.faces, dtype=np.int64).tobytes())
    return h.hexdigest()
