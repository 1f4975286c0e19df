"""The five procedural AutoMate-style designs (dimensions and builders) and :func:`make_assembly`.

Each builder turns a spec's bounding boxes and a design's internal dimensions into a watertight plug and
socket in the frame convention of :mod:`.parts`, with the grasp sites the scripted expert uses; ``make_assembly``
checks them against the gripper's rules. Lengths in metres (written in mm, converted with ``MM``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely.geometry as sg
import trimesh

from .csg import (bore_chamfer_cutter, circle, difference, extrude, intersection, revolve, rounded_rect,
                  tip_chamfer_solid, top_chamfer_solid, union)
from .parts import (DEFAULT_DENSITY, GRIPPER_ENVELOPE, MM, ROUND_GRASP_SYMMETRY, AssemblyGeometry, AssemblySpec,
                    AssemblySpecError, GraspSite, geometry_from_meshes, get_assembly_spec, hand_clears)


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
    section = sg.Polygon(circle(peg_dx / 2)).intersection(sg.box(-peg_dx, -peg_dy / 2, peg_dx, peg_dy / 2))
    peg = intersection(extrude(section, 0.0, peg_h), tip_chamfer_solid(peg_dx / 2 - d.tip_chamfer, peg_h))
    # a round through-hole: the peg stops on the table under the block
    block = difference(
        extrude(rounded_rect(block_x, block_y, d.block_corner_radius), 0.0, block_h),
        extrude(sg.Polygon(circle(hole_r)), -1.0 * MM, block_h + 1.0 * MM),
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
    nut = difference(
        extrude(sg.Polygon(_hexagon(nut_x, nut_y), [circle(d.bore_radius)]), 0.0, nut_h),
        bore_chamfer_cutter(d.bore_radius, d.bore_chamfer),
    )
    ch, head_h = d.shank_chamfer, d.head_height
    shank = revolve([(0.0, head_h / 2), (shank_r, head_h / 2), (shank_r, bolt_h - ch), (shank_r - ch, bolt_h),
                      (0.0, bolt_h)])
    bolt = union(extrude(sg.Polygon(_hexagon(head_x, head_y)), 0.0, head_h), shank)
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
    plug = revolve([
        (0.0, 0.0), (tube_r - d.tip_chamfer, 0.0), (tube_r, d.tip_chamfer), (tube_r, d.insert_length),
        (flange_r, d.insert_length), (flange_r, top), (tube_r, top), (tube_r, plug_h), (0.0, plug_h),
    ])
    floor = socket_h - d.bore_depth
    socket = revolve([(0.0, 0.0), (outer_r, 0.0), (outer_r, socket_h), (bore_r, socket_h), (bore_r, floor),
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
    post_section = rounded_rect(post_side, post_side, d.post_corner_radius)
    tube = difference(
        extrude(rounded_rect(tube_x, tube_y, d.tube_corner_radius), 0.0, plug_h),
        extrude(post_section.buffer(clearance, quad_segs=8), -1.0 * MM, plug_h + 1.0 * MM),
    )
    post = intersection(
        extrude(post_section, d.housing_height - 1.0 * MM, socket_h),  # 1 mm into the housing: the union overlaps
        top_chamfer_solid(post_side / 2 - d.post_chamfer, socket_h),
    )
    housing = union(extrude(rounded_rect(housing_x, housing_y, d.housing_corner_radius), 0.0, d.housing_height),
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
    ring = revolve([(bore_r, 0.0), (ring_d / 2, 0.0), (ring_d / 2, collar_h), (bore_r, collar_h), (bore_r, 0.0)])
    to_x = trimesh.transformations.rotation_matrix(math.pi / 2, (0, 1, 0))  # cylinder axis z -> x
    boss_len = boss_end - (bore_r + 2 * MM)
    boss = trimesh.creation.cylinder(radius=d.boss_radius, height=boss_len, sections=48)
    boss.apply_transform(to_x)
    boss.apply_translation((boss_end - boss_len / 2, 0.0, collar_h / 2))
    screw_len = boss_end + 1 * MM - d.screw_hole_bottom
    screw = trimesh.creation.cylinder(radius=d.screw_radius, height=screw_len, sections=24)
    screw.apply_transform(to_x)
    screw.apply_translation((d.screw_hole_bottom + screw_len / 2, 0.0, collar_h / 2))
    collar = difference(union(ring, boss), screw, bore_chamfer_cutter(bore_r, d.bore_chamfer))
    ch = d.shaft_chamfer
    shaft = revolve([(0.0, 0.0), (base_r, 0.0), (base_r, d.base_height), (shaft_r, d.base_height),
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
