"""Procedural AutoMate-style assembly parts (plug + socket meshes) and a loader for real part meshes.

The real AutoMate meshes live on NVIDIA's asset server, which is unreachable from most machines this
project runs on, so each of the five VT-Refine assemblies is rebuilt here as watertight geometry of
the same kind and with the same bounding box (see ``ASSEMBLY_SPECS``). Real meshes can be used instead
through :func:`load_assembly_from_files`.

Units: every length is in metres, masses in kg, densities in kg/m^3. Bounding boxes in the paper are
given in mm; ``MM`` converts.

Frame convention (plug and socket alike):
    * z points up; a part resting upright on the table at z = 0 has its origin on the table, at the
      centre of its bounding box's bottom face (procedural parts put the origin on the insertion axis,
      which is the box centre except for the collar, whose one-sided set-screw boss moves the box
      centre 0.1 mm off the axis).
    * The insertion axis is the socket's +z: assembling moves the plug along -z of the socket frame.
    * The plug's assembled pose in the socket frame is identity rotation plus the translation
      (0, 0, ``assembled_plug_z``). All five assemblies close by a pure -z translation.
    * In the assembled pose of a procedural pair every gap, radial and axial, equals ``clearance``
      (the plug hovers ``clearance`` above its hard stop, so the fit is contact-free; a plug resting on
      its stop sits ``clearance`` lower, i.e. slightly "past" assembled).

Grasp convention (see :class:`GripperEnvelope`): the scripted expert grasps each part standing upright on
the table from the side, fingers pitched 15 deg down, pads closing horizontally. Procedural grasp sites
keep the pads off the table, touch the part where its width is the recorded one, and keep each hand clear
of the other hand and of the other part in the assembled pose: the plug of an "over" pair (nut, bayonet
sleeve, collar) comes to rest on a shoulder of the socket above the left hand's fingers, and the plug of
an "into" pair (peg, connector) is held high enough for the right hand's pads to stay above the socket.
"""

from __future__ import annotations

import functools
import hashlib
import math
import operator
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import manifold3d
import numpy as np
import shapely.geometry as sg
import trimesh

MM = 1e-3
"""Metres per millimetre."""

DEFAULT_CLEARANCE = 0.001
"""Radial (and axial) clearance of the procedural fits [m]."""

MAX_CLEARANCE = 0.003
"""Largest clearance the procedural designs accept [m]; beyond it the bayonet pin gets too thin."""

DEFAULT_DENSITY = 1050.0
"""ABS-like plastic [kg/m^3]."""

GRIPPER_MAX_OBJECT_WIDTH = 0.080
"""Widest object the ALOHA gripper closes on [m] (pads open to about 84 mm)."""

ROUND_GRASP_SYMMETRY = 8
"""``GraspSite.symmetry_order`` of a round section: any closing axis works; 8 gives the expert enough choices."""

ROUND_SECTIONS = 96
"""Facets per full turn of round features. A multiple of 4 (and of 6) so that round boxes are exact in
x and y; the faceting error r * (1 - cos(pi / 96)) stays below 0.014 mm up to r = 26 mm."""

MESH_EXTENSIONS = (".obj", ".stl", ".ply")
USD_EXTENSIONS = (".usd", ".usda", ".usdc")

_TRIANGULATION_ENGINE = "manifold"  # manifold3d triangulates polygons with holes; earcut/triangle may be absent


class AssemblySpecError(ValueError):
    """An unknown assembly key or an out-of-range generation parameter."""


class MeshFormatError(ValueError):
    """A part mesh file that cannot be used (unsupported extension, no triangles, ...)."""


class MeshFileNotFoundError(FileNotFoundError):
    """A part mesh file that does not exist."""


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
    """Reach of the pitched ALOHA fingers around a grasp point, which procedural grasp sites respect [m].

    The expert approaches horizontally with the gripper pitched 15 deg down; each FlexiTac pad is 66.65 mm
    long, 26 mm tall and 3 mm thick, on an 8 mm finger, and the grasp point lies between the pads 15 mm
    ahead of their centres. Heights below are measured from the grasp point.
    """

    pad_reach_below: float = 17.5 * MM  # lowest pad corner: 13 cos 15 + 18.3 sin 15 = 17.3 mm, rounded up
    finger_rise_behind: float = 21.0 * MM  # highest finger point within 30 mm behind the grasp point
    min_center_z: float = 21.0 * MM  # lowest grasp centre on a standing part: 17.3 mm pad reach + 3 mm off the table
    hand_gap: float = 2.0 * MM  # margin kept between a hand and the other part
    max_width: float = 75.0 * MM  # widest section the pads should close on (the stroke ends at 80 mm)


GRIPPER_ENVELOPE = GripperEnvelope()
"""The envelope the procedural grasp sites are designed for."""


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
    """Radial clearance of the fit [m]."""
    assembled_plug_z: float
    """Plug origin height in the socket frame when fully inserted [m]."""
    insertion_depth: float
    """Travel along -z from first engagement (plug bottom level with socket top) to assembled [m]."""
    socket_height: float
    """Socket bounding-box height [m] (the success check uses 4 % of it)."""
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
    a round shaft); n >= 1 = only yaws that are multiples of 360 deg / n fit (2: two-pin bayonet; 1: keyed)."""

    def __post_init__(self):
        if isinstance(self.yaw_symmetry, bool) or not isinstance(self.yaw_symmetry, int) or self.yaw_symmetry < 0:
            raise ValueError(f"AssemblyGeometry.yaw_symmetry must be an int >= 0, got {self.yaw_symmetry!r}.")

    def assembled_plug_transform(self) -> np.ndarray:
        """Pose of the plug frame in the socket frame when assembled: array of shape (4, 4)."""
        pose = np.eye(4)
        pose[2, 3] = self.assembled_plug_z
        return pose


# ---------------------------------------------------------------------------------------------------
# Design dimensions (internal features; outer extents come from ASSEMBLY_SPECS)
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PegInHoleDesign:
    """Internal dimensions of 00186: a round peg with two flats in a blind hole of a block [m]."""

    hole_floor: float = 8.0 * MM  # block material below the hole
    tip_chamfer: float = 1.5 * MM  # 45 deg lead-in on the peg tip
    block_corner_radius: float = 4.0 * MM
    plug_grasp_z: float = 57.0 * MM  # assembled, 44.5 mm above the left grasp: the fingers (21 up, 20 down) keep apart
    socket_grasp_z: float = 21.5 * MM  # low on the block, pads 4 mm off the table


@dataclass(frozen=True)
class NutAndBoltDesign:
    """Internal dimensions of 00581: hex nut over a shoulder bolt (tall hex body, round stud) [m]."""

    shaft_radius: float = 13.0 * MM  # the stud the nut slides over
    body_height: float = 45.0 * MM  # hex body: the left hand's grip; its top is the shoulder the nut rests on
    shaft_chamfer: float = 2.0 * MM
    bore_chamfer: float = 1.5 * MM  # lead-in at the nut's lower bore edge
    plug_grasp_z: float = 21.5 * MM  # the 23.4 mm nut is barely taller than the lowest allowed grasp
    socket_grasp_z: float = 21.5 * MM  # fingers rise to 42.5 mm, below the nut resting at 45 mm + clearance


@dataclass(frozen=True)
class BayonetDesign:
    """Internal dimensions of 00446: a capped sleeve with two inner pins over a slotted post [m]."""

    collar_height: float = 45.0 * MM  # lower post collar, full socket width: left hand's grip and sleeve seat
    post_radius: float = 18.0 * MM
    post_chamfer: float = 1.5 * MM
    slot_depth: float = 3.0 * MM  # radial depth of the L-slot into the post wall
    slot_width: float = 8.0 * MM  # tangential width of the axial channel
    turn_height: float = 10.0 * MM  # axial height of the circumferential (locking) turn
    turn_angle_deg: float = 30.0  # how far the turn runs round the post [deg]
    pin_height_above_rim: float = 6.0 * MM  # pin bottom above the sleeve's open end
    bore_depth: float = 50.0 * MM  # sleeve cavity: the 45.8 mm post above the collar plus headroom; the rest is cap
    plug_grasp_z: float = 80.0 * MM  # upper sleeve, as before the collar was raised
    socket_grasp_z: float = 21.5 * MM  # fingers rise to 42.5 mm, below the sleeve resting at 45 mm + clearance


@dataclass(frozen=True)
class MechanicalConnectorDesign:
    """Internal dimensions of 00081: a square grip with a keyed round insert, and a keyed cavity [m]."""

    insert_length: float = 14.0 * MM  # short insert, tall grip: pads held above the housing still touch the grip
    insert_radius: float = 11.0 * MM
    key_width: float = 6.0 * MM  # key tab along +y of the insert
    key_reach: float = 14.0 * MM  # tab's outer face distance from the axis
    insert_chamfer: float = 1.0 * MM
    cavity_extra_depth: float = 3.0 * MM  # cavity floor below the insert tip when assembled
    grip_corner_radius: float = 3.0 * MM
    housing_corner_radius: float = 4.0 * MM
    plug_grasp_z: float = 35.0 * MM  # pads' lowest corner 17.5 mm lower, > 2 mm above the housing when assembled
    socket_grasp_z: float = 22.5 * MM  # low on the housing


@dataclass(frozen=True)
class ShaftCollarDesign:
    """Internal dimensions of 00007: a collar with a set-screw boss over a stepped shaft [m]."""

    shaft_radius: float = 12.5 * MM  # upper shaft, which the collar slides over
    lower_height: float = 45.0 * MM  # lower shaft step, full socket width: left hand's grip and collar's seat
    shaft_chamfer: float = 2.0 * MM
    bore_chamfer: float = 1.5 * MM
    boss_radius: float = 6.0 * MM  # set-screw boss (cylinder along +x)
    boss_protrusion: float = 0.2 * MM  # boss flat beyond the ring's outer radius
    screw_radius: float = 2.5 * MM
    screw_hole_bottom: float = 17.0 * MM  # radius where the blind set-screw hole ends
    plug_grasp_z: float = 22.0 * MM  # low on the collar: the pads' middle covers the ring, clear of the boss
    socket_grasp_z: float = 21.5 * MM  # fingers rise to 42.5 mm, below the collar resting at 45 mm + clearance


DEFAULT_DESIGNS: dict[str, object] = {
    "00186": PegInHoleDesign(),
    "00581": NutAndBoltDesign(),
    "00446": BayonetDesign(),
    "00081": MechanicalConnectorDesign(),
    "00007": ShaftCollarDesign(),
}


# ---------------------------------------------------------------------------------------------------
# Mesh helpers
# ---------------------------------------------------------------------------------------------------


def _outward(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Flip a closed mesh whose faces point inwards (negative volume)."""
    if mesh.volume < 0:
        mesh.invert()
    return mesh


def _revolve(profile_rz: list[tuple[float, float]]) -> trimesh.Trimesh:
    """Solid of revolution about z of a (radius, z) profile that starts and ends on the axis, or is closed."""
    mesh = trimesh.creation.revolve(np.asarray(profile_rz, dtype=float), sections=ROUND_SECTIONS)
    return _outward(mesh)


def _circle(radius: float) -> np.ndarray:
    """Polygon ring of ROUND_SECTIONS points at angles 2 pi k / n, matching `_revolve`: array of shape (n, 2)."""
    theta = np.arange(ROUND_SECTIONS) * (2.0 * np.pi / ROUND_SECTIONS)
    return radius * np.column_stack((np.cos(theta), np.sin(theta)))


def _rounded_rect(size_x: float, size_y: float, corner_radius: float) -> sg.Polygon:
    """Axis-aligned rectangle centred on the origin with rounded corners."""
    inner = sg.box(
        -size_x / 2 + corner_radius, -size_y / 2 + corner_radius, size_x / 2 - corner_radius, size_y / 2 - corner_radius
    )
    return inner.buffer(corner_radius, quad_segs=8)


def _extrude(polygon: sg.Polygon, z0: float, z1: float) -> trimesh.Trimesh:
    """Prism of a shapely polygon (holes allowed) between heights z0 < z1."""
    mesh = trimesh.creation.extrude_polygon(polygon, z1 - z0, engine=_TRIANGULATION_ENGINE)
    mesh.apply_translation((0.0, 0.0, z0))
    return _outward(mesh)


def _box(x0: float, x1: float, y0: float, y1: float, z0: float, z1: float) -> trimesh.Trimesh:
    """Axis-aligned box between the given bounds."""
    return trimesh.creation.box(bounds=[[x0, y0, z0], [x1, y1, z1]])


def _to_manifold(mesh: trimesh.Trimesh) -> manifold3d.Manifold:
    solid = manifold3d.Manifold(
        manifold3d.Mesh64(
            vert_properties=np.array(mesh.vertices, dtype=np.float64, order="C"),
            tri_verts=np.array(mesh.faces, dtype=np.uint64, order="C"),
        )
    )
    if solid.status() != manifold3d.Error.NoError:
        raise RuntimeError(f"boolean operand is not a closed manifold ({solid.status()}); generator bug.")
    return solid


def _from_manifold(solid: manifold3d.Manifold) -> trimesh.Trimesh:
    out = solid.to_mesh64()
    vertices = np.array(out.vert_properties, dtype=np.float64)[:, :3]
    return trimesh.Trimesh(vertices=vertices, faces=np.array(out.tri_verts, dtype=np.int64), process=False)


# Booleans go to manifold3d directly in float64: trimesh's manifold engine rounds vertices to float32,
# which leaves coincident vertices and zero-area sliver triangles in the result.
def _union(*meshes: trimesh.Trimesh) -> trimesh.Trimesh:
    return _from_manifold(functools.reduce(operator.add, map(_to_manifold, meshes)))


def _difference(base: trimesh.Trimesh, *cutters: trimesh.Trimesh) -> trimesh.Trimesh:
    return _from_manifold(_to_manifold(base) - functools.reduce(operator.add, map(_to_manifold, cutters)))


def _intersection(*meshes: trimesh.Trimesh) -> trimesh.Trimesh:
    return _from_manifold(functools.reduce(operator.xor, map(_to_manifold, meshes)))


def _tip_chamfer_solid(radius_at_tip: float, top: float) -> trimesh.Trimesh:
    """A 45 deg cone-topped-by-cylinder that, intersected with a male part, chamfers its bottom edge.

    The cone passes through (radius_at_tip, z=0) and starts 1 mm below z=0 so no face is coplanar with
    the part's bottom (coplanar faces make booleans fragile).
    """
    below = 1.0 * MM
    r_big = radius_at_tip + 40.0 * MM
    return _revolve(
        [
            (0.0, -below),
            (radius_at_tip - below, -below),
            (r_big, r_big - radius_at_tip),
            (r_big, top + below),
            (0.0, top + below),
        ]
    )


def _bore_chamfer_cutter(bore_radius: float, chamfer: float) -> trimesh.Trimesh:
    """A 45 deg cone that, subtracted from a female part, chamfers its bore's bottom edge."""
    below = 1.0 * MM
    return _revolve(
        [
            (0.0, -below),
            (bore_radius + chamfer + below, -below),
            (bore_radius - below, chamfer + below),
            (0.0, chamfer + below),
        ]
    )


def _annular_sector(r_in: float, r_out: float, angle0: float, angle1: float, step_deg: float = 1.0) -> sg.Polygon:
    """Planar ring sector between radii r_in < r_out and angles angle0 < angle1 [rad]."""
    n = max(2, math.ceil(math.degrees(angle1 - angle0) / step_deg) + 1)
    theta = np.linspace(angle0, angle1, n)
    inner = r_in * np.column_stack((np.cos(theta), np.sin(theta)))
    outer = r_out * np.column_stack((np.cos(theta[::-1]), np.sin(theta[::-1])))
    return sg.Polygon(np.vstack((inner, outer)))


# ---------------------------------------------------------------------------------------------------
# The five procedural designs
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Built:
    plug: trimesh.Trimesh
    socket: trimesh.Trimesh
    assembled_plug_z: float
    plug_grasp: GraspSite
    socket_grasp: GraspSite
    yaw_symmetry: int
    plug_over_socket: bool  # True: the plug slides over the socket (nut, sleeve, collar); False: into it


def _grasp(center_z: float, axis: str, width: float, part_top: float, symmetry_order: int) -> GraspSite:
    """Site on the part's axis; its height range is the part's z span that the pitched pads and fingers cover."""
    closing = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0)}[axis]
    env = GRIPPER_ENVELOPE
    band = (max(0.0, center_z - env.pad_reach_below), min(part_top, center_z + env.finger_rise_behind))
    return GraspSite(
        center=(0.0, 0.0, center_z), closing_axis=closing, width=width, height_range=band, symmetry_order=symmetry_order
    )


def _build_peg_in_hole(spec: AssemblySpec, design: PegInHoleDesign, clearance: float) -> _Built:
    peg_dx, peg_dy, peg_h = spec.plug_bbox
    block_x, block_y, block_h = spec.socket_bbox
    # round peg (diameter = bbox x) with two flats (across flats = bbox y)
    section = sg.Polygon(_circle(peg_dx / 2)).intersection(sg.box(-peg_dx, -peg_dy / 2, peg_dx, peg_dy / 2))
    peg = _intersection(_extrude(section, 0.0, peg_h), _tip_chamfer_solid(peg_dx / 2 - design.tip_chamfer, peg_h))
    # the hole is the peg section grown by the clearance in every direction
    hole = section.buffer(clearance, quad_segs=16)
    block = _difference(
        _extrude(_rounded_rect(block_x, block_y, design.block_corner_radius), 0.0, block_h),
        _extrude(hole, design.hole_floor, block_h + 1.0 * MM),
    )
    assembled_z = design.hole_floor + clearance
    # the flats cut (dx - dy) / 2 off the round; a wider clearance lets the round peg turn freely in the hole
    yaw_symmetry = 0 if clearance > (peg_dx - peg_dy) / 2 else 2
    return _Built(
        plug=peg,
        socket=block,
        assembled_plug_z=assembled_z,
        # across the round (33.0) or the flats (32.2): 0.8 mm apart, well inside the gripper's squeeze, so any
        # closing axis is a good grasp (the expert can then approach from its own side)
        plug_grasp=_grasp(design.plug_grasp_z, "x", peg_dx, peg_h, symmetry_order=ROUND_GRASP_SYMMETRY),
        # 55.0 x 55.2 mm block: its two sides differ by less than the gripper's squeeze, so 4 axes
        socket_grasp=_grasp(design.socket_grasp_z, "x", block_x, block_h, symmetry_order=4),
        yaw_symmetry=yaw_symmetry,
        plug_over_socket=False,
    )


def _hexagon(across_corners_x: float, across_flats_y: float) -> np.ndarray:
    """Hexagon with corners on +-x and flats on +-y: array of shape (6, 2)."""
    half_x, half_y = across_corners_x / 2, across_flats_y / 2
    top_x = half_x - half_y / math.tan(math.radians(60.0))  # 60 deg flanks as in a regular hexagon
    return np.array(
        [(half_x, 0.0), (top_x, half_y), (-top_x, half_y), (-half_x, 0.0), (-top_x, -half_y), (top_x, -half_y)]
    )


def _build_nut_and_bolt(spec: AssemblySpec, design: NutAndBoltDesign, clearance: float) -> _Built:
    nut_x, nut_y, nut_h = spec.plug_bbox
    head_x, head_y, bolt_h = spec.socket_bbox
    bore_r = design.shaft_radius + clearance
    nut = _difference(
        _extrude(sg.Polygon(_hexagon(nut_x, nut_y), [_circle(bore_r)]), 0.0, nut_h),
        _bore_chamfer_cutter(bore_r, design.bore_chamfer),
    )
    r, ch, body_h = design.shaft_radius, design.shaft_chamfer, design.body_height
    shaft = _revolve([(0.0, body_h / 2), (r, body_h / 2), (r, bolt_h - ch), (r - ch, bolt_h), (0.0, bolt_h)])
    bolt = _union(_extrude(sg.Polygon(_hexagon(head_x, head_y)), 0.0, body_h), shaft)
    return _Built(
        plug=nut,
        socket=bolt,
        assembled_plug_z=body_h + clearance,  # the nut rests on the hex body's top face
        plug_grasp=_grasp(design.plug_grasp_z, "y", nut_y, nut_h, symmetry_order=6),  # hex across flats
        socket_grasp=_grasp(design.socket_grasp_z, "y", head_y, body_h, symmetry_order=6),
        yaw_symmetry=0,  # a round stud in a round bore
        plug_over_socket=True,
    )


def _build_bayonet(spec: AssemblySpec, design: BayonetDesign, clearance: float) -> _Built:
    sleeve_d = (spec.plug_bbox[0] + spec.plug_bbox[1]) / 2  # round sleeve: 52.3 x 52.2 mm -> 52.25 mm
    sleeve_h = spec.plug_bbox[2]
    collar_d = (spec.socket_bbox[0] + spec.socket_bbox[1]) / 2
    post_h = spec.socket_bbox[2]
    d = design
    if d.slot_width <= 2 * clearance or d.turn_height <= 2 * clearance:
        raise AssemblySpecError(f"clearance={clearance} m leaves no bayonet pin; use clearance < {d.slot_width / 2} m.")
    if d.bore_depth <= post_h - d.collar_height:
        raise AssemblySpecError("BayonetDesign.bore_depth must exceed the post's length above the collar.")

    # --- socket: lower collar + post, with two L-slots (axial channel from the top + a turn at its bottom)
    r_post, r_slot = d.post_radius, d.post_radius - d.slot_depth
    post = _revolve(
        [
            (0.0, 0.0),
            (collar_d / 2, 0.0),
            (collar_d / 2, d.collar_height),
            (r_post, d.collar_height),
            (r_post, post_h - d.post_chamfer),
            (r_post - d.post_chamfer, post_h),
            (0.0, post_h),
        ]
    )
    turn_bottom = d.collar_height + d.pin_height_above_rim
    half_w = d.slot_width / 2
    channel_angle = math.asin(half_w / r_slot)  # half-angle the channel subtends at the slot floor
    cutters = []
    for side in (1.0, -1.0):  # two slots, 180 deg apart
        channel = _box(r_slot, r_post + 2 * MM, -half_w, half_w, turn_bottom, post_h + 1 * MM)
        turn = _extrude(
            _annular_sector(r_slot, r_post + 2 * MM, -channel_angle, math.radians(d.turn_angle_deg) + channel_angle),
            turn_bottom,
            turn_bottom + d.turn_height,
        )
        if side < 0:
            flip = trimesh.transformations.rotation_matrix(math.pi, (0, 0, 1))
            channel.apply_transform(flip)
            turn.apply_transform(flip)
        cutters += [channel, turn]
    socket = _difference(post, *cutters)

    # --- plug: a cup (open end down) whose bore clears the post, with two inward pins
    bore_r = r_post + clearance
    sleeve = _revolve(
        [
            (0.0, d.bore_depth),
            (bore_r, d.bore_depth),
            (bore_r, 0.0),
            (sleeve_d / 2, 0.0),
            (sleeve_d / 2, sleeve_h),
            (0.0, sleeve_h),
        ]
    )
    pin_z0 = d.pin_height_above_rim
    pins = []
    for side in (1.0, -1.0):
        pin = _box(
            r_slot + clearance,
            bore_r + 1 * MM,
            -half_w + clearance,
            half_w - clearance,
            pin_z0,
            pin_z0 + d.turn_height - 2 * clearance,
        )
        if side < 0:
            pin.apply_transform(trimesh.transformations.rotation_matrix(math.pi, (0, 0, 1)))
        pins.append(pin)
    plug = _union(sleeve, *pins)
    return _Built(
        plug=plug,
        socket=socket,
        assembled_plug_z=d.collar_height + clearance,  # the sleeve's rim rests on the collar
        plug_grasp=_grasp(d.plug_grasp_z, "x", sleeve_d, sleeve_h, symmetry_order=ROUND_GRASP_SYMMETRY),
        socket_grasp=_grasp(d.socket_grasp_z, "x", collar_d, d.collar_height, symmetry_order=ROUND_GRASP_SYMMETRY),
        yaw_symmetry=2,  # two pins, 180 deg apart
        plug_over_socket=True,
    )


def _build_mechanical_connector(spec: AssemblySpec, design: MechanicalConnectorDesign, clearance: float) -> _Built:
    grip_x, grip_y, plug_h = spec.plug_bbox
    housing_x, housing_y, housing_h = spec.socket_bbox
    d = design
    insert_section = sg.Polygon(_circle(d.insert_radius)).union(
        sg.box(-d.key_width / 2, 0.0, d.key_width / 2, d.key_reach)
    )
    insert = _intersection(
        _extrude(insert_section, 0.0, d.insert_length + 1 * MM),  # 1 mm into the grip so the union overlaps
        _tip_chamfer_solid(d.insert_radius - d.insert_chamfer, plug_h),
    )
    grip = _extrude(_rounded_rect(grip_x, grip_y, d.grip_corner_radius), d.insert_length, plug_h)
    plug = _union(grip, insert)
    cavity_floor = housing_h - d.insert_length - d.cavity_extra_depth
    socket = _difference(
        _extrude(_rounded_rect(housing_x, housing_y, d.housing_corner_radius), 0.0, housing_h),
        _extrude(insert_section.buffer(clearance, quad_segs=16), cavity_floor, housing_h + 1 * MM),
    )
    if d.plug_grasp_z - GRIPPER_ENVELOPE.pad_reach_below < d.insert_length:
        raise AssemblySpecError("MechanicalConnectorDesign: the plug's pads would reach past the grip onto the insert.")
    return _Built(
        plug=plug,
        socket=socket,
        assembled_plug_z=housing_h - d.insert_length + clearance,  # grip hovers `clearance` above the housing
        plug_grasp=_grasp(d.plug_grasp_z, "x", grip_x, plug_h, symmetry_order=4),  # square grip
        socket_grasp=_grasp(d.socket_grasp_z, "x", housing_x, housing_h, symmetry_order=4),  # 47.7 x 47.8 mm
        yaw_symmetry=1,  # one key tab
        plug_over_socket=False,
    )


def _build_shaft_collar(spec: AssemblySpec, design: ShaftCollarDesign, clearance: float) -> _Built:
    ring_d = spec.plug_bbox[1]  # the boss adds to x only
    collar_h = spec.plug_bbox[2]
    lower_d = (spec.socket_bbox[0] + spec.socket_bbox[1]) / 2
    shaft_h = spec.socket_bbox[2]
    d = design
    boss_end = spec.plug_bbox[0] - ring_d / 2  # x of the boss flat, so that the box spans 51.1 mm
    if abs(boss_end - ring_d / 2 - d.boss_protrusion) > 1e-9:
        raise AssemblySpecError("ShaftCollarDesign.boss_protrusion disagrees with the spec's plug_bbox x extent.")
    bore_r = d.shaft_radius + clearance
    ring = _revolve([(bore_r, 0.0), (ring_d / 2, 0.0), (ring_d / 2, collar_h), (bore_r, collar_h), (bore_r, 0.0)])
    to_x = trimesh.transformations.rotation_matrix(math.pi / 2, (0, 1, 0))  # cylinder axis z -> x
    boss_len = boss_end - (bore_r + 2 * MM)
    boss = trimesh.creation.cylinder(radius=d.boss_radius, height=boss_len, sections=48)
    boss.apply_transform(to_x)
    boss.apply_translation((boss_end - boss_len / 2, 0.0, collar_h / 2))
    screw_len = boss_end + 1 * MM - d.screw_hole_bottom
    screw = trimesh.creation.cylinder(radius=d.screw_radius, height=screw_len, sections=24)
    screw.apply_transform(to_x)
    screw.apply_translation((d.screw_hole_bottom + screw_len / 2, 0.0, collar_h / 2))
    collar = _difference(_union(ring, boss), screw, _bore_chamfer_cutter(bore_r, d.bore_chamfer))
    r, ch = d.shaft_radius, d.shaft_chamfer
    socket = _revolve(
        [
            (0.0, 0.0),
            (lower_d / 2, 0.0),
            (lower_d / 2, d.lower_height),
            (r, d.lower_height),
            (r, shaft_h - ch),
            (r - ch, shaft_h),
            (0.0, shaft_h),
        ]
    )
    return _Built(
        plug=collar,
        socket=socket,
        assembled_plug_z=d.lower_height + clearance,  # the collar rests on the shaft's step (and overhangs its tip)
        # close along y, clear of the boss on +x; turned by 90 deg the pads would press on the boss
        plug_grasp=_grasp(d.plug_grasp_z, "y", ring_d, collar_h, symmetry_order=2),
        socket_grasp=_grasp(d.socket_grasp_z, "x", lower_d, d.lower_height, symmetry_order=ROUND_GRASP_SYMMETRY),
        yaw_symmetry=0,  # a round shaft in a round bore
        plug_over_socket=True,
    )


_BUILDERS: dict[str, Callable] = {
    "00186": _build_peg_in_hole,
    "00581": _build_nut_and_bolt,
    "00446": _build_bayonet,
    "00081": _build_mechanical_connector,
    "00007": _build_shaft_collar,
}


# ---------------------------------------------------------------------------------------------------
# Public constructors
# ---------------------------------------------------------------------------------------------------


def _check_positive(name: str, value: float, upper: float | None = None) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0 or (upper is not None and value > upper):
        bound = f" and at most {upper}" if upper is not None else ""
        raise AssemblySpecError(f"{name} must be a positive number{bound}, got {value!r}.")
    return value


def _mass(mesh: trimesh.Trimesh, density: float, label: str) -> float:
    """Mass [kg] from the enclosed volume; the convex hull stands in for a mesh that is not watertight."""
    if mesh.is_watertight and mesh.volume > 0:
        return float(mesh.volume * density)
    warnings.warn(
        f"{label}: mesh is not watertight; its mass uses the convex hull's volume.", RuntimeWarning, stacklevel=3
    )
    return float(mesh.convex_hull.volume * density)


def _check_grasp_rules(spec: AssemblySpec, built: _Built, socket_height: float) -> None:
    """Raise if a design breaks the :class:`GripperEnvelope` rules (a design bug, not a user error)."""
    env = GRIPPER_ENVELOPE
    problems = []
    for role, site, mesh in (("plug", built.plug_grasp, built.plug), ("socket", built.socket_grasp, built.socket)):
        z = site.center[2]
        if z < env.min_center_z - 1e-9:
            problems.append(f"{role} grasp at z={z:.4f} m puts the pads within 3 mm of the table")
        if z - env.pad_reach_below > mesh.bounds[1, 2]:
            problems.append(f"{role} grasp at z={z:.4f} m leaves the pads above the part")
        if site.width >= env.max_width:
            problems.append(f"{role} grasp width {site.width:.4f} m is not below {env.max_width} m")
    plug_z, socket_z = built.plug_grasp.center[2], built.socket_grasp.center[2]
    if built.plug_over_socket and built.assembled_plug_z < socket_z + env.finger_rise_behind + env.hand_gap - 1e-9:
        problems.append("the assembled plug sits on the left hand's fingers (raise the socket's shoulder)")
    if not built.plug_over_socket and (
        built.assembled_plug_z + plug_z - env.pad_reach_below < socket_height + env.hand_gap - 1e-9
    ):
        problems.append("the right hand's pads reach the socket's top when assembled (grasp the plug higher)")
    if problems:
        raise RuntimeError(f"{spec.name}: " + "; ".join(problems) + " (generator bug).")


def make_assembly(
    key: str | AssemblySpec, clearance: float = DEFAULT_CLEARANCE, density: float = DEFAULT_DENSITY
) -> AssemblyGeometry:
    """Build the procedural plug and socket of one assembly.

    Args:
        key: asset id, name or task name (see :func:`get_assembly_spec`).
        clearance: radial (and axial) gap of the fit in the assembled pose [m], in (0, MAX_CLEARANCE].
            It changes inner features only; outer bounding boxes match the spec.
        density: material density for the masses [kg/m^3].

    Returns:
        The geometry; same inputs give byte-identical meshes.
    """
    spec = get_assembly_spec(key)
    clearance = _check_positive("clearance", clearance, MAX_CLEARANCE)
    density = _check_positive("density", density)
    built: _Built = _BUILDERS[spec.asset_id](spec, DEFAULT_DESIGNS[spec.asset_id], clearance)
    for label, mesh in (("plug", built.plug), ("socket", built.socket)):
        if not (mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0):
            raise RuntimeError(f"{spec.name} {label}: generated mesh is not a closed solid (generator bug).")
    socket_height = float(built.socket.bounds[1, 2])
    _check_grasp_rules(spec, built, socket_height)
    return AssemblyGeometry(
        spec=spec,
        plug=built.plug,
        socket=built.socket,
        clearance=clearance,
        assembled_plug_z=built.assembled_plug_z,
        insertion_depth=socket_height - built.assembled_plug_z,
        socket_height=socket_height,
        plug_grasp=built.plug_grasp,
        socket_grasp=built.socket_grasp,
        plug_mass=_mass(built.plug, density, "plug"),
        socket_mass=_mass(built.socket, density, "socket"),
        yaw_symmetry=built.yaw_symmetry,
    )


def mesh_digest(mesh: trimesh.Trimesh) -> str:
    """sha256 hex digest of a mesh's vertices (float64) and faces (int64)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(mesh.vertices, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(mesh.faces, dtype=np.int64).tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------------
# Real meshes from files
# ---------------------------------------------------------------------------------------------------


def _fan_triangles(counts: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Fan-triangulate polygons given per-face vertex counts and flat indices: array of shape (T, 3)."""
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    keep = counts >= 3
    counts, starts = counts[keep], starts[keep]
    per_face = counts - 2
    face_of_tri = np.repeat(np.arange(len(counts)), per_face)
    first_tri = np.concatenate(([0], np.cumsum(per_face)[:-1]))
    corner = np.arange(per_face.sum()) - first_tri[face_of_tri] + 1  # 1 .. k-2 within each face
    base = starts[face_of_tri]
    return np.column_stack((indices[base], indices[base + corner], indices[base + corner + 1]))


def _load_usd_mesh(path: Path) -> trimesh.Trimesh:
    """All visible, non-guide UsdGeom.Mesh prims of a stage, in world coordinates and metres."""
    from pxr import Usd, UsdGeom  # deferred: pxr is heavy and only needed for USD files

    stage = Usd.Stage.Open(str(path))
    if stage is None:
        raise MeshFormatError(f"Could not open USD stage {path}.")
    meters_per_unit = UsdGeom.GetStageMetersPerUnit(stage)
    xform_cache = UsdGeom.XformCache(Usd.TimeCode.Default())
    parts = []
    for prim in Usd.PrimRange(stage.GetPseudoRoot(), Usd.TraverseInstanceProxies()):
        if not prim.IsA(UsdGeom.Mesh):
            continue
        imageable = UsdGeom.Imageable(prim)
        if (
            imageable.ComputePurpose() == UsdGeom.Tokens.guide
            or imageable.ComputeVisibility() == UsdGeom.Tokens.invisible
        ):
            continue
        usd_mesh = UsdGeom.Mesh(prim)
        points = usd_mesh.GetPointsAttr().Get()
        counts = usd_mesh.GetFaceVertexCountsAttr().Get()
        indices = usd_mesh.GetFaceVertexIndicesAttr().Get()
        if not points or not counts or not indices:
            continue
        triangles = _fan_triangles(np.asarray(counts, dtype=np.int64), np.asarray(indices, dtype=np.int64))
        if usd_mesh.GetOrientationAttr().Get() == UsdGeom.Tokens.leftHanded:
            triangles = triangles[:, ::-1]
        # Gf matrices act on row vectors: p_world = p_local @ M
        matrix = np.array(xform_cache.GetLocalToWorldTransform(prim), dtype=np.float64)
        local = np.asarray(points, dtype=np.float64)
        world = local @ matrix[:3, :3] + matrix[3, :3]
        parts.append(trimesh.Trimesh(vertices=world * meters_per_unit, faces=triangles, process=False))
    if not parts:
        raise MeshFormatError(f"USD file {path} holds no visible UsdGeom.Mesh with faces.")
    return trimesh.util.concatenate(parts)


def load_part_mesh(path: str | Path, unit_scale: float = 1.0) -> trimesh.Trimesh:
    """Load one part mesh (OBJ/STL/PLY via trimesh, USD via pxr) scaled to metres (not re-centred).

    Args:
        path: mesh file.
        unit_scale: metres per file unit, applied after loading (0.001 for a mesh in mm). USD points are
            first converted with the stage's metersPerUnit, so leave 1.0 for a well-formed USD file.
    """
    path = Path(path)
    if not path.is_file():
        raise MeshFileNotFoundError(
            f"Part mesh file not found: {path}. Check the path (it is resolved from {Path.cwd()})."
        )
    suffix = path.suffix.lower()
    if suffix in USD_EXTENSIONS:
        mesh = _load_usd_mesh(path)
    elif suffix in MESH_EXTENSIONS:
        loaded = trimesh.load(str(path), force="mesh", process=False)
        if not isinstance(loaded, trimesh.Trimesh):
            raise MeshFormatError(f"{path} did not load as a triangle mesh.")
        mesh = loaded
    else:
        allowed = ", ".join(MESH_EXTENSIONS + USD_EXTENSIONS)
        raise MeshFormatError(f"Unsupported mesh extension {suffix!r} for {path}; use one of: {allowed}.")
    if len(mesh.faces) == 0:
        raise MeshFormatError(f"{path} holds no triangles.")
    unit_scale = _check_positive("unit_scale", unit_scale)
    mesh = trimesh.Trimesh(vertices=np.asarray(mesh.vertices) * unit_scale, faces=mesh.faces, process=True)
    return mesh


def _recentre(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Move the centre of the bounding box's bottom face to the origin."""
    lo, hi = mesh.bounds
    mesh.apply_translation((-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, -lo[2]))
    return mesh


def _band_grasp(mesh: trimesh.Trimesh, z_lo: float, z_hi: float, label: str) -> GraspSite:
    """Grasp across the narrower horizontal extent of the mesh within the z band [z_lo, z_hi]."""
    band = trimesh.intersections.slice_mesh_plane(mesh, plane_normal=(0, 0, 1), plane_origin=(0, 0, z_lo))
    band = trimesh.intersections.slice_mesh_plane(band, plane_normal=(0, 0, -1), plane_origin=(0, 0, z_hi))
    if len(band.vertices) == 0:
        raise MeshFormatError(f"{label}: no surface between z={z_lo:.4f} and {z_hi:.4f} m to grasp.")
    lo, hi = band.bounds
    extents = hi - lo
    axis = 0 if extents[0] <= extents[1] else 1
    closing = (1.0, 0.0, 0.0) if axis == 0 else (0.0, 1.0, 0.0)
    if extents[axis] >= GRIPPER_MAX_OBJECT_WIDTH:
        raise MeshFormatError(
            f"{label}: narrowest width {extents[axis]:.4f} m in z band ({z_lo:.4f}, {z_hi:.4f}) m is not below the "
            f"gripper limit {GRIPPER_MAX_OBJECT_WIDTH} m; check unit_scale."
        )
    # mid-band, but high enough that the pitched pads stay off the table (if the band reaches that high)
    center_z = min(max((z_lo + z_hi) / 2, GRIPPER_ENVELOPE.min_center_z), z_hi)
    center = ((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, center_z)
    return GraspSite(
        center=tuple(float(v) for v in center),
        closing_axis=closing,
        width=float(extents[axis]),
        height_range=(z_lo, z_hi),
        symmetry_order=2,  # nothing is known about the shape beyond this axis
    )


def load_assembly_from_files(
    spec_key: str | AssemblySpec,
    plug_path: str | Path,
    socket_path: str | Path,
    assembled_plug_z: float,
    clearance: float = DEFAULT_CLEARANCE,
    unit_scale: float = 1.0,
    density: float = DEFAULT_DENSITY,
    yaw_symmetry: int = 1,
) -> AssemblyGeometry:
    """Build an :class:`AssemblyGeometry` from real part meshes (e.g. the AutoMate plug/socket files).

    Both meshes are re-centred to the frame convention (origin at the centre of the bounding box's
    bottom face), so the insertion axis must pass through both boxes' centres.

    Args:
        spec_key: the assembly these files belong to (see :func:`get_assembly_spec`).
        plug_path, socket_path: .obj/.stl/.ply (trimesh) or .usd/.usda/.usdc (pxr) files.
        assembled_plug_z: plug origin height in the re-centred socket frame when fully inserted [m].
        clearance: the meshes' own radial clearance, recorded as given [m].
        unit_scale: metres per file unit (0.001 for meshes in mm; see :func:`load_part_mesh`).
        density: material density for the masses [kg/m^3].
        yaw_symmetry: yaw symmetry of the fit (see :attr:`AssemblyGeometry.yaw_symmetry`); the default 1
            makes the expert align the plug's yaw exactly, which suits any fit.

    Warns:
        RuntimeWarning: for a mesh that is not watertight (real meshes may not be), and for a box that
        differs from the spec's by more than 20 % (usually a wrong ``unit_scale``).
    """
    spec = get_assembly_spec(spec_key)
    clearance = _check_positive("clearance", clearance)
    density = _check_positive("density", density)
    meshes = {}
    for label, path, expected in (("plug", plug_path, spec.plug_bbox), ("socket", socket_path, spec.socket_bbox)):
        mesh = _recentre(load_part_mesh(path, unit_scale))
        if not mesh.is_watertight:
            warnings.warn(
                f"{label} mesh {path} is not watertight; inside/outside queries may be wrong.",
                RuntimeWarning,
                stacklevel=2,
            )
        extents = mesh.extents
        if np.any(np.abs(extents / np.asarray(expected) - 1.0) > 0.2):
            warnings.warn(
                f"{label} mesh {path} has extents {np.round(extents, 4).tolist()} m but {spec.name} expects about "
                f"{list(expected)} m; is unit_scale={unit_scale} right?",
                RuntimeWarning,
                stacklevel=2,
            )
        meshes[label] = mesh
    socket_height = float(meshes["socket"].extents[2])
    plug_height = float(meshes["plug"].extents[2])
    assembled_plug_z = float(assembled_plug_z)
    if not 0.0 <= assembled_plug_z < socket_height:
        raise AssemblySpecError(
            f"assembled_plug_z={assembled_plug_z} m must lie in [0, socket height {socket_height:.4f} m): the plug's "
            "bottom must end up below the socket's top."
        )
    return AssemblyGeometry(
        spec=spec,
        plug=meshes["plug"],
        socket=meshes["socket"],
        clearance=clearance,
        assembled_plug_z=assembled_plug_z,
        insertion_depth=socket_height - assembled_plug_z,
        socket_height=socket_height,
        # plug: top 40 % (the bottom goes into the socket); socket: bottom 40 % (the plug comes from above)
        plug_grasp=_band_grasp(meshes["plug"], 0.6 * plug_height, plug_height, "plug"),
        socket_grasp=_band_grasp(meshes["socket"], 0.0, 0.4 * socket_height, "socket"),
        plug_mass=_mass(meshes["plug"], density, "plug"),
        socket_mass=_mass(meshes["socket"], density, "socket"),
        yaw_symmetry=operator.index(yaw_symmetry),  # an int: rejects 1.5, accepts numpy integers
    )
