"""Tests of the procedural assembly parts (vt_refine.assets.parts): the measured AutoMate fits, the kinds of
parts, grasp sites and the hand rules the scripted expert relies on."""

from __future__ import annotations

import math

import manifold3d
import numpy as np
import pytest
import trimesh

from vt_refine.assets.part_files import measure_radial_play
from vt_refine.assets.parts import (
    ASSEMBLY_SPECS,
    GRIPPER_MAX_OBJECT_WIDTH,
    MM,
    AssemblySpecError,
    GraspSite,
    get_assembly_spec,
)
from vt_refine.assets.part_designs import make_assembly, measured_clearance

ASSET_IDS = list(ASSEMBLY_SPECS)
BBOX_TOL = 0.5 * MM


MEASURED = {"00186": 3.3 * MM, "00581": 1.9 * MM, "00446": 1.8 * MM, "00081": 2.35 * MM, "00007": 3.0 * MM}
"""Radial play of AutoMate's published scaled meshes (the issue that rebuilt the parts measured them)."""


@pytest.fixture(scope="module")
def assemblies():
    """Every procedural assembly at its measured play (key None) and at 1 mm, built once for the module."""
    out = {(key, None): make_assembly(key) for key in ASSET_IDS}
    out.update({(key, 1 * MM): make_assembly(key, clearance=1 * MM) for key in ASSET_IDS})
    return out


def _manifold(mesh: trimesh.Trimesh) -> manifold3d.Manifold:
    m = manifold3d.Manifold(
        manifold3d.Mesh64(
            vert_properties=np.ascontiguousarray(mesh.vertices, dtype=np.float64),
            tri_verts=np.ascontiguousarray(mesh.faces, dtype=np.uint64),
        )
    )
    assert m.status() == manifold3d.Error.NoError
    return m


def _plug_in_socket(geometry, dx=0.0, dz=0.0, yaw_deg=0.0, dy=0.0) -> trimesh.Trimesh:
    """Plug mesh in the socket frame at the assembled pose, displaced by (dx, dy, dz) and yawed."""
    plug = geometry.plug.copy()
    plug.apply_transform(trimesh.transformations.rotation_matrix(math.radians(yaw_deg), (0, 0, 1)))
    plug.apply_translation((dx, dy, geometry.assembled_plug_z + dz))
    return plug


def _overlap_volume(a: trimesh.Trimesh, b: trimesh.Trimesh) -> float:
    """Volume [m^3] of the boolean intersection of two closed meshes."""
    return (_manifold(a) ^ _manifold(b)).volume()


OVERLAP_EPS = 1e-12  # m^3 = 0.001 mm^3: numerical zero for an intersection volume


# --------------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------------


def test_spec_lookup_by_id_name_and_task_name():
    spec = get_assembly_spec("00186")
    assert get_assembly_spec("peg_in_hole") is spec
    assert get_assembly_spec("PegInHole") is spec
    assert get_assembly_spec("pEgInHoLe") is spec
    assert get_assembly_spec(spec) is spec
    assert {s.task_name for s in ASSEMBLY_SPECS.values()} == {
        "PegInHole",
        "NutAndBolt",
        "Bayonet",
        "MechanicalConnector",
        "ShaftCollar",
    }
    assert spec.plug_bbox == pytest.approx((0.0330, 0.0322, 0.0748))


def test_unknown_key_names_the_choices():
    with pytest.raises(ValueError, match="Unknown assembly key 'gear'.*00186"):
        get_assembly_spec("gear")


@pytest.mark.parametrize("bad", [0.0, -0.001, 0.02, float("nan")])
@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_bad_clearance_is_rejected(bad, asset_id):
    with pytest.raises(AssemblySpecError, match="clearance"):
        make_assembly(asset_id, clearance=bad)


def test_bad_density_is_rejected():
    with pytest.raises(ValueError, match="density"):
        make_assembly("00186", density=-1.0)


# --------------------------------------------------------------------------------------------------
# Meshes: closed solids, boxes, frame convention
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_meshes_are_closed_solids_with_spec_boxes(assemblies, asset_id):
    g = assemblies[(asset_id, None)]
    for mesh, expected in ((g.plug, g.spec.plug_bbox), (g.socket, g.spec.socket_bbox)):
        assert mesh.is_watertight
        assert mesh.is_winding_consistent
        assert mesh.volume > 0
        assert mesh.body_count == 1
        assert mesh.area_faces.min() > 1e-12  # no sliver triangles (they upset collision cooking)
        assert len(np.unique(mesh.vertices, axis=0)) == len(mesh.vertices)  # no duplicate vertices
        np.testing.assert_allclose(mesh.extents, expected, atol=BBOX_TOL)
        lo, hi = mesh.bounds
        assert lo[2] == pytest.approx(0.0, abs=1e-9)  # resting on the table
        np.testing.assert_allclose((lo[:2] + hi[:2]) / 2, 0.0, atol=BBOX_TOL)  # box centred in x/y (on the axis)
    assert g.socket_height == pytest.approx(g.spec.socket_bbox[2], abs=BBOX_TOL)


@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_clearance_changes_inner_features_only(assemblies, asset_id):
    tight, loose = assemblies[(asset_id, 1 * MM)], assemblies[(asset_id, None)]
    np.testing.assert_allclose(tight.plug.extents, loose.plug.extents, atol=1e-7)
    np.testing.assert_allclose(tight.socket.extents, loose.socket.extents, atol=1e-7)
    # a looser fit removes material from the plug or the socket
    assert loose.plug.volume + loose.socket.volume < tight.plug.volume + tight.socket.volume - 1e-8


@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_generation_is_deterministic(assemblies, asset_id):
    again = make_assembly(asset_id)
    first = assemblies[(asset_id, None)]
    for a, b in ((first.plug, again.plug), (first.socket, again.socket)):
        assert a.vertices.tobytes() == b.vertices.tobytes()
        assert a.faces.tobytes() == b.faces.tobytes()


# --------------------------------------------------------------------------------------------------
# The fit: the measured plays, the kinds of parts, the assembled poses
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_default_play_is_the_measured_one(assemblies, asset_id):
    g = assemblies[(asset_id, None)]
    assert g.clearance == pytest.approx(MEASURED[asset_id]) and measured_clearance(asset_id) == g.clearance
    # measured on the meshes, not just recorded: sliding the assembled plug sideways touches after the play
    assert measure_radial_play(g.assembled_plug(), g.socket) == pytest.approx(g.clearance, abs=0.15 * MM)
    assert _overlap_volume(_plug_in_socket(g, dx=g.clearance + 1.5 * MM, dz=0.1 * MM), g.socket) > 1e-9


@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_a_chosen_clearance_resizes_the_fit(assemblies, asset_id):
    g = assemblies[(asset_id, 1 * MM)]
    assert measure_radial_play(g.assembled_plug(), g.socket) == pytest.approx(1 * MM, abs=0.15 * MM)


@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_assembled_pose_is_free_and_rests_on_the_stop(assemblies, asset_id):
    g = assemblies[(asset_id, None)]
    lifted = _plug_in_socket(g, dz=0.05 * MM)
    assert _overlap_volume(lifted, g.socket) < OVERLAP_EPS
    assert g.insertion_depth == pytest.approx(g.socket_height - g.assembled_plug_z)
    if asset_id == "00186":  # a through-hole: the table is the stop, level with the block's bottom
        assert g.assembled_plug_z == 0.0 and g.seated
        assert _overlap_volume(_plug_in_socket(g, dz=-20 * MM), g.socket) < OVERLAP_EPS
    elif g.seated:  # resting on a shoulder of the socket: 1 mm lower hits it
        assert _overlap_volume(_plug_in_socket(g, dz=-1 * MM), g.socket) > 1e-9
    else:  # the collar: no seat anywhere down to the table
        assert _overlap_volume(_plug_in_socket(g, dz=-g.assembled_plug_z), g.socket) < OVERLAP_EPS


def _section_width(mesh, z: float) -> float:
    points = trimesh.intersections.slice_mesh_plane(
        trimesh.intersections.slice_mesh_plane(mesh, (0, 0, 1), (0, 0, z - 1e-4)), (0, 0, -1), (0, 0, z + 1e-4)).vertices
    return float(np.linalg.norm(points[:, :2], axis=1).max() * 2)


def test_the_kinds_of_parts_are_automate_s(assemblies):
    peg = assemblies[("00186", None)]
    # a through-hole of 39.6 mm: a vertical line anywhere within 19 mm of the axis misses the block
    hits, _, _ = peg.socket.ray.intersects_location([[0.019, 0.0, -1.0], [0.0, 0.0, -1.0]], [[0, 0, 1]] * 2)
    assert len(hits) == 0
    nut = assemblies[("00581", None)]
    assert nut.assembled_plug_z == pytest.approx(12.4 * MM)  # the nut rests on a 12.4 mm head
    assert not nut.socket_held_while_inserting  # the left fingers on the shank are in the nut's way
    bayonet = assemblies[("00446", None)]
    assert bayonet.plug_grasp.width == pytest.approx(21.9 * MM)  # the tube, not its 52.3 mm flange
    assert _section_width(bayonet.plug, bayonet.assembled_plug_z * 0 + 43 * MM) > 52 * MM  # the flange
    assert bayonet.assembled_plug_z + bayonet.plug.bounds[0, 2] < bayonet.socket_height  # its tube goes into the socket
    connector = assemblies[("00081", None)]
    assert connector.yaw_symmetry == 4
    assert _overlap_volume(_plug_in_socket(connector, yaw_deg=45.0, dz=0.05 * MM), connector.socket) > 1e-9
    assert _overlap_volume(_plug_in_socket(connector, yaw_deg=90.0, dz=0.05 * MM), connector.socket) < OVERLAP_EPS
    collar = assemblies[("00007", None)]
    assert not collar.seated and not collar.socket_held_while_inserting
    widest = max(_section_width(collar.socket, z) for z in np.linspace(1 * MM, collar.socket_height - 3 * MM, 30))
    assert widest < 43.0 * MM  # the bore is wider than every section of the shaft


# --------------------------------------------------------------------------------------------------
# Grasp sites and masses
# --------------------------------------------------------------------------------------------------


def _band_extent(mesh: trimesh.Trimesh, z_lo: float, z_hi: float, axis: np.ndarray) -> float:
    band = trimesh.intersections.slice_mesh_plane(mesh, (0, 0, 1), (0, 0, z_lo))
    band = trimesh.intersections.slice_mesh_plane(band, (0, 0, -1), (0, 0, z_hi))
    along = band.vertices @ axis
    return float(along.max() - along.min())


@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_grasp_sites_fit_the_gripper_and_the_part(assemblies, asset_id):
    g = assemblies[(asset_id, None)]
    for mesh, site, role in ((g.plug, g.plug_grasp, "plug"), (g.socket, g.socket_grasp, "socket")):
        lo, hi = mesh.bounds
        assert np.all(np.asarray(site.center) >= lo - 1e-9) and np.all(np.asarray(site.center) <= hi + 1e-9)
        assert 0 < site.width < GRIPPER_MAX_OBJECT_WIDTH
        assert lo[2] - 1e-9 <= site.height_range[0] < site.height_range[1] <= hi[2] + 1e-9
        axis = np.asarray(site.closing_axis)
        assert np.linalg.norm(axis) == pytest.approx(1.0) and axis[2] == 0.0
        # the recorded width is the part's real width across the fingers over the band
        assert site.width == pytest.approx(_band_extent(mesh, *site.height_range, axis), abs=0.3 * MM), role


def _pads(site, gap: float) -> trimesh.Trimesh:
    """Two 3 mm thick, 26 mm wide finger pads over the site's height band, `gap` outside the recorded width."""
    axis = np.asarray(site.closing_axis)
    side = np.cross((0.0, 0.0, 1.0), axis)
    pads = []
    for sign in (1.0, -1.0):
        pad = trimesh.creation.box(extents=(3 * MM, 26 * MM, site.height_range[1] - site.height_range[0]))
        frame = np.eye(4)
        frame[:3, 0], frame[:3, 1] = axis, side
        frame[:3, 3] = np.asarray(site.center) + sign * axis * (site.width / 2 + gap + 1.5 * MM)
        frame[2, 3] = sum(site.height_range) / 2
        pad.apply_transform(frame)
        pads.append(pad)
    return trimesh.util.concatenate(pads)


@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_pads_at_the_grasp_sites_clear_both_parts_when_assembled(assemblies, asset_id):
    g = assemblies[(asset_id, None)]
    plug_pads = _pads(g.plug_grasp, gap=0.5 * MM)
    socket_pads = _pads(g.socket_grasp, gap=0.5 * MM)
    # pads just outside the recorded width touch nothing of their own part ...
    assert _overlap_volume(plug_pads, g.plug) < OVERLAP_EPS
    assert _overlap_volume(socket_pads, g.socket) < OVERLAP_EPS
    # ... while pads 1 mm inside it do (the width is not overstated)
    assert _overlap_volume(_pads(g.plug_grasp, gap=-1 * MM), g.plug) > 1e-9
    assert _overlap_volume(_pads(g.socket_grasp, gap=-1 * MM), g.socket) > 1e-9
    # in the assembled pose the plug's pads miss the socket and the socket's pads miss the plug
    plug_pads.apply_translation((0.0, 0.0, g.assembled_plug_z))
    assert _overlap_volume(plug_pads, g.socket) < OVERLAP_EPS
    # the left pads miss the plug where the expert may keep holding the socket, and hit it where it lets go
    hit = _overlap_volume(socket_pads, _plug_in_socket(g))
    assert (hit < OVERLAP_EPS) == g.socket_held_while_inserting


def test_masses_follow_volume_and_density():
    g = make_assembly("00007", density=1000.0)
    heavy = make_assembly("00007", density=2000.0)
    assert heavy.plug_mass == pytest.approx(2 * g.plug_mass)
    # the collar's socket is a stepped shaft: pi R^2 h + pi r^2 (H - h), less a 2 mm tip chamfer
    base_r, base_h, shaft_r, height = 42.35 / 2 * MM, 20 * MM, 18.5 * MM, 81.4 * MM
    analytic = math.pi * base_r**2 * base_h + math.pi * shaft_r**2 * (height - base_h)
    assert g.socket_mass == pytest.approx(1000.0 * analytic, rel=0.01)
    assert 0.02 < g.plug_mass < 0.2  # a 51 mm plastic collar weighs tens of grams


# --------------------------------------------------------------------------------------------------
# Grasps the scripted expert can use: pitched pads off the table, hands clear of each other when assembled
# --------------------------------------------------------------------------------------------------

# The expert's gripper: FlexiTac pads 66.65 mm long, 26 mm tall, 3 mm thick on 8 mm fingers, pitched 15 deg
# down; the grasp point lies between the pads 15 mm ahead of their centres. Numbers restated here on
# purpose, so that the tests do not trust the module's GripperEnvelope.
PAD_LENGTH, PAD_HEIGHT, PAD_THICKNESS, FINGER_THICKNESS = 66.65 * MM, 26.0 * MM, 3.0 * MM, 8.0 * MM
PAD_CENTRE_BEHIND = 15.0 * MM  # pad centre behind the grasp point, along the finger
FINGER_TIP_AHEAD = 30.0 * MM  # fingers reach this far ahead of the grasp point
PITCH = math.radians(15.0)
LEVEL_GRASP_Z = 0.04  # the expert approaches level (no pitch) for grasps this high: the pads cannot reach the table
MIN_GRASP_Z = 0.021  # pads (17.3 mm below the grasp point) stay >= 3 mm above the table
PAD_REACH_BELOW = 0.0175  # lowest pad corner below the grasp point
FINGER_RISE_BEHIND = 0.021  # highest finger point within 30 mm behind the grasp point
HAND_GAP = 0.002  # margin between a hand and the other part
MAX_GRASP_WIDTH = 0.075
HELD = {"00186": True, "00581": False, "00446": True, "00081": True, "00007": False}
"""Whether the left hand may keep holding the socket while the plug goes in (its fingers clear the plug)."""


def _sites(g):
    """(role, mesh, site) for the plug and the socket."""
    return (("plug", g.plug, g.plug_grasp), ("socket", g.socket, g.socket_grasp))


def _pad_band(mesh: trimesh.Trimesh, site) -> tuple[float, float]:
    """z span of the part that the pitched pads and the fingers just behind them can touch."""
    z = site.center[2]
    return max(0.0, z - PAD_REACH_BELOW), min(mesh.bounds[1, 2], z + FINGER_RISE_BEHIND)


def _rotated_axis(site, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    x, y, _ = site.closing_axis
    return np.array((c * x - s * y, s * x + c * y, 0.0))


@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_grasp_heights_keep_pads_off_the_table_and_on_the_part(assemblies, asset_id):
    g = assemblies[(asset_id, None)]
    for role, mesh, site in _sites(g):
        z = site.center[2]
        assert z >= MIN_GRASP_Z - 1e-9, f"{role}: pads would come within 3 mm of the table"
        assert z - PAD_REACH_BELOW <= mesh.bounds[1, 2], f"{role}: pads would miss the part"
        # what the pads touch over their whole band is the recorded width, and the gripper closes on it
        band = _pad_band(mesh, site)
        touched = _band_extent(mesh, *band, np.asarray(site.closing_axis))
        assert touched == pytest.approx(site.width, abs=0.3 * MM), role
        assert touched < MAX_GRASP_WIDTH, role
        assert site.height_range == pytest.approx(band, abs=1e-9), role


def _hand(center, closing, forward, width: float, gap: float) -> list[trimesh.Trimesh]:
    """Pads (first two boxes) and fingers of a gripper pitched 15 deg down (level from 40 mm up, as the expert
    holds them), its pads `gap` outside `width`.

    `closing` and `forward` are horizontal unit vectors; the fingers point along `forward`, tips down.
    """
    closing, forward = np.asarray(closing, float), np.asarray(forward, float)
    pitch = 0.0 if center[2] >= LEVEL_GRASP_Z else PITCH
    along = math.cos(pitch) * forward - math.sin(pitch) * np.array((0.0, 0.0, 1.0))
    normal = np.cross(along, closing)  # right-handed frame (along, closing, normal)
    pad_back = -PAD_CENTRE_BEHIND - PAD_LENGTH / 2
    pieces = (  # (offset of the inner face beyond the pad face, thickness, extent along the finger)
        (0.0, PAD_THICKNESS, (pad_back, -PAD_CENTRE_BEHIND + PAD_LENGTH / 2)),
        (PAD_THICKNESS, FINGER_THICKNESS, (pad_back, FINGER_TIP_AHEAD)),
    )
    boxes = []
    for inner, thickness, (a0, a1) in pieces:
        for sign in (1.0, -1.0):
            frame = np.eye(4)
            frame[:3, 0], frame[:3, 1], frame[:3, 2] = along, closing, normal
            lateral = width / 2 + gap + inner + thickness / 2
            frame[:3, 3] = np.asarray(center) + along * (a0 + a1) / 2 + sign * closing * lateral
            boxes.append(trimesh.creation.box(extents=(a1 - a0, thickness, PAD_HEIGHT), transform=frame))
    return boxes


def _hits(boxes: list[trimesh.Trimesh], other) -> float:
    """Overlap volume [m^3] of a hand's boxes with a mesh or with another hand's boxes."""
    others = other if isinstance(other, list) else [other]
    return sum(_overlap_volume(a, b) for a in boxes for b in others)


def _min_gap(boxes: list[trimesh.Trimesh], other) -> float:
    """Smallest distance [m] between a hand's boxes and a mesh or another hand (capped at 50 mm)."""
    others = other if isinstance(other, list) else [other]
    return min(_manifold(a).min_gap(_manifold(b), 0.05) for a in boxes for b in others)


def test_hand_model_matches_the_stated_reach():
    """The pitched pad model reproduces the brief's figures (17.3 mm below, ~21 mm above 30 mm behind)."""
    boxes = _hand((0, 0, 0), (1, 0, 0), (0, 1, 0), width=0.03, gap=0.0)
    pads, fingers = np.vstack([b.vertices for b in boxes[:2]]), np.vstack([b.vertices for b in boxes[2:]])
    assert pads[:, 2].min() == pytest.approx(-17.3 * MM, abs=0.1 * MM)
    assert fingers[:, 2].min() == pytest.approx(-20.3 * MM, abs=0.1 * MM)
    top_at = math.tan(PITCH) * 30 * MM + PAD_HEIGHT / 2 / math.cos(PITCH)
    assert top_at == pytest.approx(FINGER_RISE_BEHIND, abs=0.5 * MM)


@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_pitched_pads_grasp_each_standing_part_along_every_symmetric_axis(assemblies, asset_id):
    g = assemblies[(asset_id, None)]
    for role, mesh, site in _sites(g):
        for k in range(site.symmetry_order):
            closing = _rotated_axis(site, 2 * math.pi * k / site.symmetry_order)
            side = np.cross((0.0, 0.0, 1.0), closing)
            for forward in (side, -side):
                hand = _hand(site.center, closing, forward, site.width, gap=0.5 * MM)
                label = f"{role} axis {k} forward {np.round(forward, 2)}"
                assert min(b.bounds[0, 2] for b in hand[:2]) >= 3 * MM - 1e-9, label  # pads off the table
                assert min(b.bounds[0, 2] for b in hand) > 0.0, label  # fingers not in the table
                assert _hits(hand, mesh) < OVERLAP_EPS, label  # nothing wider than `width` in the way
                squeezed = _hand(site.center, closing, forward, site.width, gap=-1 * MM)
                assert _hits(squeezed[:2], mesh) > 1e-9, label


def _parallel_socket_axis(g) -> np.ndarray:
    """The socket site's symmetric closing axis parallel to the plug's (both hands close along one axis)."""
    plug_axis = np.asarray(g.plug_grasp.closing_axis)
    order = g.socket_grasp.symmetry_order
    for k in range(order):
        axis = _rotated_axis(g.socket_grasp, 2 * math.pi * k / order)
        if abs(abs(axis @ plug_axis) - 1.0) < 1e-9:
            return axis
    raise AssertionError(f"no socket closing axis of {g.spec.name} is parallel to the plug's")


@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_left_hand_holds_the_socket_only_where_it_clears_the_plug(assemblies, asset_id):
    g = assemblies[(asset_id, None)]
    assert g.socket_held_while_inserting == HELD[asset_id]
    closing = _parallel_socket_axis(g)
    side = np.cross((0.0, 0.0, 1.0), closing)
    plug = _plug_in_socket(g)
    for left_forward in (side, -side):
        left = _hand(g.socket_grasp.center, closing, left_forward, g.socket_grasp.width, gap=0.5 * MM)
        if HELD[asset_id]:
            assert _hits(left, plug) < OVERLAP_EPS and _min_gap(left, plug) >= HAND_GAP
        else:  # the expert lets go before the plug comes down: the plug enters the fingers' height band
            # outside the pads (a conservative rule: the collar would still clear the pitched fingers by 2.9 mm)
            in_band = plug.vertices[plug.vertices[:, 2] < g.socket_grasp.center[2] + FINGER_RISE_BEHIND + HAND_GAP]
            assert len(in_band) and np.abs(in_band @ closing).max() > g.socket_grasp.width / 2


@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_assembled_right_hand_clears_the_socket_and_a_holding_left_hand(assemblies, asset_id):
    g = assemblies[(asset_id, None)]
    closing = _parallel_socket_axis(g)
    side = np.cross((0.0, 0.0, 1.0), closing)
    right_center = np.asarray(g.plug_grasp.center) + (0.0, 0.0, g.assembled_plug_z)
    for right_forward in (side, -side):
        right = _hand(right_center, closing, right_forward, g.plug_grasp.width, gap=0.5 * MM)
        assert _hits(right, g.socket) < OVERLAP_EPS, "right hand hits the socket"
        assert _min_gap(right, g.socket) >= HAND_GAP, "right hand too close to the socket"
        if g.socket_held_while_inserting:  # the expert's arms come from opposite sides
            left = _hand(g.socket_grasp.center, closing, -right_forward, g.socket_grasp.width, gap=0.5 * MM)
            assert _hits(left, right) < OVERLAP_EPS and _min_gap(left, right) >= HAND_GAP, "the hands collide"


def test_assembled_hand_check_can_fail(assemblies):
    """Sanity check of the test above: a peg held 30 mm lower would put the right fingers on the block."""
    g = assemblies[("00186", None)]
    closing = _parallel_socket_axis(g)
    side = np.cross((0.0, 0.0, 1.0), closing)
    right_center = np.asarray(g.plug_grasp.center) + (0.0, 0.0, g.assembled_plug_z - 30 * MM)
    assert _hits(_hand(right_center, closing, side, g.plug_grasp.width, gap=0.5 * MM), g.socket) > 1e-9


# --------------------------------------------------------------------------------------------------
# Symmetry
# --------------------------------------------------------------------------------------------------

EXPECTED_GRASP_SYMMETRY = {  # (plug, socket)
    "00186": (8, 4),  # peg: round and flats within the squeeze; near-square block
    "00581": (6, 8),  # hex nut; round shank
    "00446": (8, 8),  # round tube; round socket tube
    "00081": (4, 4),  # square tube; near-square housing
    "00007": (2, 8),  # collar held clear of its boss; round base
}
EXPECTED_YAW_SYMMETRY = {"00186": 0, "00581": 0, "00446": 0, "00081": 4, "00007": 0}


@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_symmetry_fields(assemblies, asset_id):
    g = assemblies[(asset_id, None)]
    assert (g.plug_grasp.symmetry_order, g.socket_grasp.symmetry_order) == EXPECTED_GRASP_SYMMETRY[asset_id]
    assert g.yaw_symmetry == EXPECTED_YAW_SYMMETRY[asset_id]
    assert isinstance(g.yaw_symmetry, int) and isinstance(g.plug_grasp.symmetry_order, int)


@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_grasp_symmetry_order_axes_see_the_same_width(assemblies, asset_id):
    g = assemblies[(asset_id, None)]
    for role, mesh, site in _sites(g):
        band = site.height_range
        n = site.symmetry_order
        for k in range(n):
            width = _band_extent(mesh, *band, _rotated_axis(site, 2 * math.pi * k / n))
            # equivalent closing axes may see widths up to 1 mm apart: the gripper's squeeze absorbs that
            assert width == pytest.approx(site.width, abs=1.0 * MM), f"{role} axis {k}/{n}"
        if n < 8:  # not round: half a step off, the width changes (the order is not understated)
            width = _band_extent(mesh, *band, _rotated_axis(site, math.pi / n))
            assert abs(width - site.width) > 0.1 * MM, f"{role}: order {n} could be doubled"


@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_yaw_symmetry_matches_the_fit(assemblies, asset_id):
    g = assemblies[(asset_id, None)]
    n = g.yaw_symmetry
    if n == 0:  # any yaw fits
        for yaw in (17.0, 45.0, 90.0, 133.0, 260.0):
            assert _overlap_volume(_plug_in_socket(g, yaw_deg=yaw, dz=0.05 * MM), g.socket) < OVERLAP_EPS, yaw
    else:  # turning by 360/n fits, by half of that does not
        assert _overlap_volume(_plug_in_socket(g, yaw_deg=360.0 / n, dz=0.05 * MM), g.socket) < OVERLAP_EPS
        assert _overlap_volume(_plug_in_socket(g, yaw_deg=180.0 / n, dz=0.05 * MM), g.socket) > 1e-9


def test_symmetry_fields_are_validated(assemblies):
    import dataclasses

    with pytest.raises(ValueError, match="symmetry_order"):
        GraspSite(center=(0, 0, 0.03), closing_axis=(1, 0, 0), width=0.03, height_range=(0, 0.05), symmetry_order=0)
    with pytest.raises(ValueError, match="yaw_symmetry"):
        dataclasses.replace(assemblies[("00186", None)], yaw_symmetry=-1)


