"""Procedural AutoMate assembly parts (plug + socket meshes) with the fits of the published meshes.

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

import functools
import hashlib
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import replace as dataclasses_replace

import manifold3d
import numpy as np
import shapely.geometry as sg
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

_TRIANGULATION_ENGINE = "manifold"  # manifold3d triangulates polygons with holes; earcut/triangle may be absent


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
# Design dimensions (internal features; outer extents come from ASSEMBLY_SPECS)
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PegInHoleDesign:
    """00186: a round peg with two flats through a round hole in a block; the table stops the peg [m]."""

    clearance: float = 3.3 * MM  # measured: 39.6 mm hole around the 33.0 mm round (3.7 mm across the 32.2 flats)
    tip_chamfer: float = 1.5 * MM  # 45 deg lead-in on the peg tip
    block_corner_radius: float = 4.0 * MM
    # the level pads (46-72 mm) stay 2.8 mm under the 74.8 mm peg's top and, when it is in, 2.9 mm from the left
    # hand's fingers on the block; at 66 mm they overhung the top by 4 mm and BC's ~9 mm height errors left a
    # thin contact (36 of 50 BC episodes dropped the peg)
    plug_grasp_z: float = 59.0 * MM
    socket_grasp_z: float = 21.5 * MM  # low on the block, pads 4 mm off the table


@dataclass(frozen=True)
class NutAndBoltDesign:
    """00581: a hex nut lowered over a bolt's round shank until it rests on the 12.4 mm hex head [m]."""

    clearance: float = 1.9 * MM  # measured radial play of the nut's bore on the shank
    bore_radius: float = 15.0 * MM  # the nut's bore; the shank is this less the clearance
    head_height: float = 12.4 * MM  # measured: the hex head the nut rests on
    shank_chamfer: float = 2.0 * MM
    bore_chamfer: float = 1.5 * MM  # lead-in at the nut's lower bore edge
    plug_grasp_z: float = 21.5 * MM  # the 23.4 mm nut is barely taller than the lowest allowed grasp
    socket_grasp_z: float = 34.0 * MM  # on the shank, pads 4 mm above the head (in the nut's way: set down, let go)


@dataclass(frozen=True)
class BayonetDesign:
    """00446: a flanged tube whose lower end goes into a socket tube; the flange rests on the tube's rim [m]."""

    clearance: float = 1.8 * MM  # measured radial play of the plug tube in the socket tube's bore
    tube_diameter: float = 21.9 * MM  # measured: the plug tube's outer diameter (solid here: its bore fits nothing)
    flange_thickness: float = 6.0 * MM  # the 52.3 mm flange (the plug's bounding box)
    insert_length: float = 40.0 * MM  # plug tube below the flange, all of it inside the socket when assembled
    bore_depth: float = 60.0 * MM  # socket bore below its rim: deeper than the insert, so the flange seats
    tip_chamfer: float = 1.0 * MM
    plug_grasp_z: float = 80.0 * MM  # on the tube above the flange (21.9 mm wide, not the flange's 52.3)
    socket_grasp_z: float = 21.5 * MM  # low on the socket tube


@dataclass(frozen=True)
class MechanicalConnectorDesign:
    """00081: a square tube slid over a square post until it rests on the housing's top [m]."""

    clearance: float = 2.35 * MM  # measured radial play of the square tube on the post
    wall: float = 5.0 * MM  # square tube wall; its bore is the outer square less two walls
    housing_height: float = 45.0 * MM  # the post stands on the housing up to the socket's full height
    post_corner_radius: float = 2.0 * MM
    tube_corner_radius: float = 3.0 * MM
    housing_corner_radius: float = 4.0 * MM
    post_chamfer: float = 1.5 * MM
    plug_grasp_z: float = 22.0 * MM  # pads' lowest corner 4.5 mm above the tube's bottom, so above the housing
    socket_grasp_z: float = 21.5 * MM  # low on the housing; the fingers rise to 42.5 mm, under the tube's seat


@dataclass(frozen=True)
class ShaftCollarDesign:
    """00007: a collar whose bore is wider than every section of the shaft: no seat, a stored pose [m]."""

    clearance: float = 3.0 * MM  # measured: the 43.0 mm bore around the 37.0 mm shaft
    bore_diameter: float = 43.0 * MM  # measured; the shaft is this less twice the clearance
    base_height: float = 20.0 * MM  # the 42.4 mm base (the socket's bounding box), still narrower than the bore
    assembled_top_gap: float = 0.0 * MM  # assembled: the collar's top this far below the shaft's (flush)
    shaft_chamfer: float = 2.0 * MM
    bore_chamfer: float = 1.5 * MM
    boss_radius: float = 6.0 * MM  # set-screw boss (cylinder along +x)
    boss_protrusion: float = 0.2 * MM  # boss flat beyond the ring's outer radius
    screw_radius: float = 2.5 * MM
    screw_hole_bottom: float = 22.5 * MM  # radius where the blind set-screw hole ends
    plug_grasp_z: float = 22.0 * MM  # low on the collar: the pads' middle covers the ring, clear of the boss
    socket_grasp_z: float = 21.5 * MM  # low on the shaft (in the collar's way: set down, let go)


DEFAULT_DESIGNS: dict[str, object] = {
    "00186": PegInHoleDesign(),
    "00581": NutAndBoltDesign(),
    "00446": BayonetDesign(),
    "00081": MechanicalConnectorDesign(),
    "00007": ShaftCollarDesign(),
}


def measured_clearance(key: str | AssemblySpec) -> float:
    """The radial play of an assembly as measured on AutoMate's published meshes [m]."""
    return float(DEFAULT_DESIGNS[get_assembly_spec(key).asset_id].clearance)


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


def _top_chamfer_solid(radius_at_top: float, top: float) -> trimesh.Trimesh:
    """A 45 deg cone-below-cylinder that, intersected with a male part standing on z = 0, chamfers its top edge
    (the cone passes through (radius_at_top, top))."""
    below = 1.0 * MM
    r_big = radius_at_top + 60.0 * MM
    return _revolve(
        [
            (0.0, -below),
            (r_big, -below),
            (r_big, top - (r_big - radius_at_top)),
            (radius_at_top - below, top + below),
            (0.0, top + below),
        ]
    )


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
    seated: bool = True


def _grasp(center_z: float, axis: str, width: float, part_top: float, symmetry_order: int) -> GraspSite:
    """Site on the part's axis; its height range is the part's z span that the pitched pads and fingers cover."""
    closing = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0)}[axis]
    return GraspSite(
        center=(0.0, 0.0, center_z),
        closing_axis=closing,
        width=width,
        height_range=GRIPPER_ENVELOPE.band(center_z, part_top),
        symmetry_order=symmetry_order,
    )


def _check_clearance(name: str, clearance: float, largest: float) -> None:
    if not 0.0 < clearance <= largest:
        raise AssemblySpecError(f"{name}: clearance must lie in (0, {largest * 1000:.2f} mm], got {clearance * 1000:.3f} mm.")


def _build_peg_in_hole(spec: AssemblySpec, d: PegInHoleDesign, clearance: float) -> _Built:
    peg_dx, peg_dy, peg_h = spec.plug_bbox
    block_x, block_y, block_h = spec.socket_bbox
    hole_r = peg_dx / 2 + clearance
    _check_clearance(spec.name, clearance, min(block_x, block_y) / 2 - 5 * MM - peg_dx / 2)  # keep a 5 mm wall
    # round peg (diameter = bbox x) with two flats (across flats = bbox y)
    section = sg.Polygon(_circle(peg_dx / 2)).intersection(sg.box(-peg_dx, -peg_dy / 2, peg_dx, peg_dy / 2))
    peg = _intersection(_extrude(section, 0.0, peg_h), _tip_chamfer_solid(peg_dx / 2 - d.tip_chamfer, peg_h))
    # a round through-hole: the peg stops on the table under the block
    block = _difference(
        _extrude(_rounded_rect(block_x, block_y, d.block_corner_radius), 0.0, block_h),
        _extrude(sg.Polygon(_circle(hole_r)), -1.0 * MM, block_h + 1.0 * MM),
    )
    return _Built(
        plug=peg,
        socket=block,
        assembled_plug_z=0.0,  # on the table, level with the block's bottom
        # across the round (33.0) or the flats (32.2): 0.8 mm apart, well inside the gripper's squeeze, so any
        # closing axis is a good grasp (the expert can then approach from its own side)
        plug_grasp=_grasp(d.plug_grasp_z, "x", peg_dx, peg_h, symmetry_order=ROUND_GRASP_SYMMETRY),
        # 55.0 x 55.2 mm block: its two sides differ by less than the gripper's squeeze, so 4 axes
        socket_grasp=_grasp(d.socket_grasp_z, "x", block_x, block_h, symmetry_order=4),
        yaw_symmetry=0,  # a round hole
    )


def _hexagon(across_corners_x: float, across_flats_y: float) -> np.ndarray:
    """Hexagon with corners on +-x and flats on +-y: array of shape (6, 2)."""
    half_x, half_y = across_corners_x / 2, across_flats_y / 2
    top_x = half_x - half_y / math.tan(math.radians(60.0))  # 60 deg flanks as in a regular hexagon
    return np.array(
        [(half_x, 0.0), (top_x, half_y), (-top_x, half_y), (-half_x, 0.0), (-top_x, -half_y), (top_x, -half_y)]
    )


def _build_nut_and_bolt(spec: AssemblySpec, d: NutAndBoltDesign, clearance: float) -> _Built:
    nut_x, nut_y, nut_h = spec.plug_bbox
    head_x, head_y, bolt_h = spec.socket_bbox
    _check_clearance(spec.name, clearance, d.bore_radius - 5 * MM)  # keep a 10 mm shank
    shank_r = d.bore_radius - clearance
    nut = _difference(
        _extrude(sg.Polygon(_hexagon(nut_x, nut_y), [_circle(d.bore_radius)]), 0.0, nut_h),
        _bore_chamfer_cutter(d.bore_radius, d.bore_chamfer),
    )
    ch, head_h = d.shank_chamfer, d.head_height
    shank = _revolve([(0.0, head_h / 2), (shank_r, head_h / 2), (shank_r, bolt_h - ch), (shank_r - ch, bolt_h),
                      (0.0, bolt_h)])
    bolt = _union(_extrude(sg.Polygon(_hexagon(head_x, head_y)), 0.0, head_h), shank)
    return _Built(
        plug=nut,
        socket=bolt,
        assembled_plug_z=head_h,  # the nut rests on the head
        plug_grasp=_grasp(d.plug_grasp_z, "y", nut_y, nut_h, symmetry_order=6),  # hex across flats
        socket_grasp=_grasp(d.socket_grasp_z, "x", 2 * shank_r, bolt_h, symmetry_order=ROUND_GRASP_SYMMETRY),
        yaw_symmetry=0,  # a round shank in a round bore
    )


def _build_bayonet(spec: AssemblySpec, d: BayonetDesign, clearance: float) -> _Built:
    flange_r = (spec.plug_bbox[0] + spec.plug_bbox[1]) / 4  # round flange: 52.3 x 52.2 mm -> 52.25 mm
    plug_h = spec.plug_bbox[2]
    outer_r = (spec.socket_bbox[0] + spec.socket_bbox[1]) / 4
    socket_h = spec.socket_bbox[2]
    tube_r, bore_r = d.tube_diameter / 2, d.tube_diameter / 2 + clearance
    _check_clearance(spec.name, clearance, outer_r - 4 * MM - tube_r)  # keep a 4 mm socket wall
    if not d.insert_length < d.bore_depth < socket_h:
        raise AssemblySpecError("BayonetDesign: need insert_length < bore_depth < socket height (the flange seats).")
    top = d.insert_length + d.flange_thickness
    plug = _revolve([
        (0.0, 0.0), (tube_r - d.tip_chamfer, 0.0), (tube_r, d.tip_chamfer), (tube_r, d.insert_length),
        (flange_r, d.insert_length), (flange_r, top), (tube_r, top), (tube_r, plug_h), (0.0, plug_h),
    ])
    floor = socket_h - d.bore_depth
    socket = _revolve([(0.0, 0.0), (outer_r, 0.0), (outer_r, socket_h), (bore_r, socket_h), (bore_r, floor),
                       (0.0, floor)])
    return _Built(
        plug=plug,
        socket=socket,
        assembled_plug_z=socket_h - d.insert_length,  # the flange rests on the rim
        plug_grasp=_grasp(d.plug_grasp_z, "x", d.tube_diameter, plug_h, symmetry_order=ROUND_GRASP_SYMMETRY),
        socket_grasp=_grasp(d.socket_grasp_z, "x", 2 * outer_r, socket_h, symmetry_order=ROUND_GRASP_SYMMETRY),
        yaw_symmetry=0,  # round in round
    )


def _build_mechanical_connector(spec: AssemblySpec, d: MechanicalConnectorDesign, clearance: float) -> _Built:
    tube_x, tube_y, plug_h = spec.plug_bbox
    housing_x, housing_y, socket_h = spec.socket_bbox
    bore = min(tube_x, tube_y) - 2 * d.wall
    post_side = bore - 2 * clearance
    _check_clearance(spec.name, clearance, (bore - 10 * MM) / 2)  # keep a 10 mm post
    post_section = _rounded_rect(post_side, post_side, d.post_corner_radius)
    tube = _difference(
        _extrude(_rounded_rect(tube_x, tube_y, d.tube_corner_radius), 0.0, plug_h),
        _extrude(post_section.buffer(clearance, quad_segs=8), -1.0 * MM, plug_h + 1.0 * MM),
    )
    post = _intersection(
        _extrude(post_section, d.housing_height - 1.0 * MM, socket_h),  # 1 mm into the housing: the union overlaps
        _top_chamfer_solid(post_side / 2 - d.post_chamfer, socket_h),
    )
    housing = _union(_extrude(_rounded_rect(housing_x, housing_y, d.housing_corner_radius), 0.0, d.housing_height),
                     post)
    return _Built(
        plug=tube,
        socket=housing,
        assembled_plug_z=d.housing_height,  # the tube rests on the housing's top
        plug_grasp=_grasp(d.plug_grasp_z, "x", tube_x, plug_h, symmetry_order=4),  # square tube
        socket_grasp=_grasp(d.socket_grasp_z, "x", housing_x, socket_h, symmetry_order=4),  # 47.7 x 47.8 mm
        yaw_symmetry=4,  # a square post in a square bore
    )


def _build_shaft_collar(spec: AssemblySpec, d: ShaftCollarDesign, clearance: float) -> _Built:
    ring_d = spec.plug_bbox[1]  # the boss adds to x only
    collar_h = spec.plug_bbox[2]
    base_r = (spec.socket_bbox[0] + spec.socket_bbox[1]) / 4
    shaft_h = spec.socket_bbox[2]
    bore_r = d.bore_diameter / 2
    shaft_r = bore_r - clearance
    _check_clearance(spec.name, clearance, bore_r - 10 * MM)  # keep a 20 mm shaft
    if base_r >= bore_r:
        raise AssemblySpecError("ShaftCollarDesign: the base must stay narrower than the collar's bore (no seat).")
    boss_end = spec.plug_bbox[0] - ring_d / 2  # x of the boss flat, so that the box spans 51.1 mm
    if abs(boss_end - ring_d / 2 - d.boss_protrusion) > 1e-9:
        raise AssemblySpecError("ShaftCollarDesign.boss_protrusion disagrees with the spec's plug_bbox x extent.")
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
    ch = d.shaft_chamfer
    shaft = _revolve([(0.0, 0.0), (base_r, 0.0), (base_r, d.base_height), (shaft_r, d.base_height),
                      (shaft_r, shaft_h - ch), (shaft_r - ch, shaft_h), (0.0, shaft_h)])
    return _Built(
        plug=collar,
        socket=shaft,
        assembled_plug_z=shaft_h - d.assembled_top_gap - collar_h,  # stored: flush with the shaft's top
        # close along y, clear of the boss on +x; turned by 90 deg the pads would press on the boss
        plug_grasp=_grasp(d.plug_grasp_z, "y", ring_d, collar_h, symmetry_order=2),
        socket_grasp=_grasp(d.socket_grasp_z, "x", 2 * base_r, shaft_h, symmetry_order=ROUND_GRASP_SYMMETRY),
        yaw_symmetry=0,  # a round shaft in a round bore
        seated=False,  # the bore is wider than every section: a released collar slides to the table
    )


_BUILDERS: dict[str, Callable] = {
    "00186": _build_peg_in_hole,
    "00581": _build_nut_and_bolt,
    "00446": _build_bayonet,
    "00081": _build_mechanical_connector,
    "00007": _build_shaft_collar,
}


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


# ---------------------------------------------------------------------------------------------------
# Public constructors
# ---------------------------------------------------------------------------------------------------


def _check_positive(name: str, value: float, upper: float | None = None) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0 or (upper is not None and value > upper):
        bound = f" and at most {upper}" if upper is not None else ""
        raise AssemblySpecError(f"{name} must be a positive number{bound}, got {value!r}.")
    return value


def _check_grasp_rules(spec: AssemblySpec, built: _Built) -> None:
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
    socket_in_plug_frame = built.socket.copy()
    socket_in_plug_frame.apply_translation((0.0, 0.0, -built.assembled_plug_z))
    if not hand_clears(built.plug_grasp, socket_in_plug_frame):
        problems.append("the right hand reaches the socket when assembled (grasp the plug elsewhere)")
    if problems:
        raise RuntimeError(f"{spec.name}: " + "; ".join(problems) + " (generator bug).")


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


def make_assembly(
    key: str | AssemblySpec, clearance: float | None = None, density: float = DEFAULT_DENSITY
) -> AssemblyGeometry:
    """Build the procedural plug and socket of one assembly.

    Args:
        key: asset id, name or task name (see :func:`get_assembly_spec`).
        clearance: radial play of the fit [m]; None takes the play measured on AutoMate's meshes
            (:func:`measured_clearance`). Another value resizes the female feature (or, where the female one is
            the measured part, the male one) and leaves outer bounding boxes as in the spec.
        density: material density for the masses [kg/m^3].

    Returns:
        The geometry; same inputs give byte-identical meshes.
    """
    spec = get_assembly_spec(key)
    design = DEFAULT_DESIGNS[spec.asset_id]
    clearance = design.clearance if clearance is None else _check_positive("clearance", clearance)
    density = _check_positive("density", density)
    built: _Built = _BUILDERS[spec.asset_id](spec, design, clearance)
    for label, mesh in (("plug", built.plug), ("socket", built.socket)):
        if not (mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0):
            raise RuntimeError(f"{spec.name} {label}: generated mesh is not a closed solid (generator bug).")
    _check_grasp_rules(spec, built)
    return geometry_from_meshes(spec, built.plug, built.socket, clearance, built.assembled_plug_z, built.plug_grasp,
                                built.socket_grasp, built.yaw_symmetry, built.seated, density)


def mesh_digest(mesh: trimesh.Trimesh) -> str:
    """sha256 hex digest of a mesh's vertices (float64) and faces (int64)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(mesh.vertices, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(mesh.faces, dtype=np.int64).tobytes())
    return h.hexdigest()
