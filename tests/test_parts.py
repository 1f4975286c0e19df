"""Tests of the procedural assembly parts and the part-mesh loader (vt_refine.assets.parts)."""

from __future__ import annotations

import math
import warnings

import manifold3d
import numpy as np
import pytest
import trimesh

from vt_refine.assets.parts import (
    ASSEMBLY_SPECS,
    GRIPPER_MAX_OBJECT_WIDTH,
    MM,
    AssemblySpecError,
    GraspSite,
    MeshFileNotFoundError,
    MeshFormatError,
    get_assembly_spec,
    load_assembly_from_files,
    make_assembly,
)

ASSET_IDS = list(ASSEMBLY_SPECS)
BBOX_TOL = 0.5 * MM


@pytest.fixture(scope="module")
def assemblies():
    """Every procedural assembly at clearance 1 mm and 2 mm, built once for the module."""
    return {(key, c): make_assembly(key, clearance=c) for key in ASSET_IDS for c in (1 * MM, 2 * MM)}


def _manifold(mesh: trimesh.Trimesh) -> manifold3d.Manifold:
    m = manifold3d.Manifold(
        manifold3d.Mesh64(
            vert_properties=np.ascontiguousarray(mesh.vertices, dtype=np.float64),
            tri_verts=np.ascontiguousarray(mesh.faces, dtype=np.uint64),
        )
    )
    assert m.status() == manifold3d.Error.NoError
    return m


def _plug_in_socket(geometry, dx=0.0, dz=0.0, yaw_deg=0.0) -> trimesh.Trimesh:
    """Plug mesh in the socket frame at the assembled pose, displaced by (dx, 0, dz) and yawed."""
    plug = geometry.plug.copy()
    plug.apply_transform(trimesh.transformations.rotation_matrix(math.radians(yaw_deg), (0, 0, 1)))
    plug.apply_translation((dx, 0.0, geometry.assembled_plug_z + dz))
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


@pytest.mark.parametrize("bad", [0.0, -0.001, 0.01, float("nan")])
def test_bad_clearance_is_rejected(bad):
    with pytest.raises(AssemblySpecError, match="clearance"):
        make_assembly("00186", clearance=bad)


def test_bad_density_is_rejected():
    with pytest.raises(ValueError, match="density"):
        make_assembly("00186", density=-1.0)


# --------------------------------------------------------------------------------------------------
# Meshes: closed solids, boxes, frame convention
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_meshes_are_closed_solids_with_spec_boxes(assemblies, asset_id):
    g = assemblies[(asset_id, 1 * MM)]
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
        np.testing.assert_allclose((lo[:2] + hi[:2]) / 2, 0.0, atol=BBOX_TOL)  # box centred in x/y
    assert g.socket_height == pytest.approx(g.spec.socket_bbox[2], abs=BBOX_TOL)


@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_clearance_changes_inner_features_only(assemblies, asset_id):
    tight, loose = assemblies[(asset_id, 1 * MM)], assemblies[(asset_id, 2 * MM)]
    np.testing.assert_allclose(tight.plug.extents, loose.plug.extents, atol=1e-7)
    np.testing.assert_allclose(tight.socket.extents, loose.socket.extents, atol=1e-7)
    # a looser fit removes material from the plug or the socket
    assert loose.plug.volume + loose.socket.volume < tight.plug.volume + tight.socket.volume - 1e-8


@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_generation_is_deterministic(assemblies, asset_id):
    again = make_assembly(asset_id, clearance=1 * MM)
    first = assemblies[(asset_id, 1 * MM)]
    for a, b in ((first.plug, again.plug), (first.socket, again.socket)):
        assert a.vertices.tobytes() == b.vertices.tobytes()
        assert a.faces.tobytes() == b.faces.tobytes()


# --------------------------------------------------------------------------------------------------
# The fit
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("clearance", [1 * MM, 2 * MM])
@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_assembled_pose_is_contact_free_with_the_requested_gap(assemblies, asset_id, clearance):
    g = assemblies[(asset_id, clearance)]
    plug = _plug_in_socket(g)
    assert _overlap_volume(plug, g.socket) < OVERLAP_EPS
    gap = _manifold(plug).min_gap(_manifold(g.socket), 0.01)
    assert gap == pytest.approx(clearance, abs=0.3 * MM)
    # the test can fail: shifting the plug sideways by 5 mm drives it into the socket
    assert _overlap_volume(_plug_in_socket(g, dx=5 * MM), g.socket) > 1e-8  # > 10 mm^3


@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_signed_distances_agree_with_the_gap(assemblies, asset_id):
    """Independent of manifold3d: surface samples of each part lie outside the other by >= clearance/2."""
    clearance = 1 * MM
    g = assemblies[(asset_id, clearance)]
    plug = _plug_in_socket(g)
    for a, b in ((plug, g.socket), (g.socket, plug)):
        samples, _ = trimesh.sample.sample_surface(a, 1500, seed=0)
        points = np.vstack((a.vertices, samples))
        outside = -trimesh.proximity.signed_distance(b, points)  # trimesh: negative outside
        assert outside.min() >= 0.5 * clearance
    # and the smallest of them is the clearance (the parts are not just far apart)
    points = np.vstack((plug.vertices, trimesh.sample.sample_surface(plug, 1500, seed=0)[0]))
    assert (-trimesh.proximity.signed_distance(g.socket, points)).min() == pytest.approx(clearance, abs=0.3 * MM)


@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_assembled_pose_sits_on_the_hard_stop(assemblies, asset_id):
    """Lowering the plug by 1.5x the clearance hits the socket: the assembled pose is fully inserted."""
    g = assemblies[(asset_id, 1 * MM)]
    assert _overlap_volume(_plug_in_socket(g, dz=-1.5 * g.clearance), g.socket) > 1e-10
    assert g.insertion_depth == pytest.approx(g.socket_height - g.assembled_plug_z)
    assert g.insertion_depth > 4 * 0.04 * g.socket_height  # a real insertion, well beyond the 4 % success band


def test_bayonet_pin_rides_the_l_slot(assemblies):
    g = assemblies[("00446", 1 * MM)]
    # at the bottom of the channel the pin can turn into the locking turn (+yaw) but not the other way
    assert _overlap_volume(_plug_in_socket(g, yaw_deg=20.0), g.socket) < OVERLAP_EPS
    assert _overlap_volume(_plug_in_socket(g, yaw_deg=-20.0), g.socket) > 1e-9
    # higher up the channel the pin cannot turn at all
    assert _overlap_volume(_plug_in_socket(g, dz=30 * MM, yaw_deg=20.0), g.socket) > 1e-9
    # and off the channel the sleeve cannot go down: the pins hit the post
    assert _overlap_volume(_plug_in_socket(g, yaw_deg=90.0), g.socket) > 1e-9


def test_connector_is_keyed_but_peg_is_not(assemblies):
    connector = assemblies[("00081", 1 * MM)]
    assert _overlap_volume(_plug_in_socket(connector, yaw_deg=90.0), connector.socket) > 1e-9
    peg = assemblies[("00186", 1 * MM)]
    assert _overlap_volume(_plug_in_socket(peg, yaw_deg=45.0), peg.socket) < OVERLAP_EPS


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
    g = assemblies[(asset_id, 1 * MM)]
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
    g = assemblies[(asset_id, 1 * MM)]
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
    assert _overlap_volume(socket_pads, _plug_in_socket(g)) < OVERLAP_EPS


def test_masses_follow_volume_and_density():
    g = make_assembly("00007", density=1000.0)
    heavy = make_assembly("00007", density=2000.0)
    assert heavy.plug_mass == pytest.approx(2 * g.plug_mass)
    # the collar's socket is a stepped shaft: pi R^2 h + pi r^2 (H - h), less a 2 mm tip chamfer
    base_r, base_h, shaft_r, height = 42.35 / 2 * MM, 45 * MM, 12.5 * MM, 81.4 * MM
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
MIN_GRASP_Z = 0.021  # rule 2: pads (17.3 mm below the grasp point) stay >= 3 mm above the table
PAD_REACH_BELOW = 0.0175  # rule 2 and 4: lowest pad corner below the grasp point
FINGER_RISE_BEHIND = 0.021  # highest finger point within 30 mm behind the grasp point
HAND_GAP = 0.002  # margin between a hand and the other part
MAX_GRASP_WIDTH = 0.075

OVER = ("00581", "00446", "00007")  # the plug slides over the socket: nut, bayonet sleeve, collar
INTO = ("00186", "00081")  # the plug goes into the socket: peg, connector
CLEARANCES = (1 * MM, 2 * MM)


def test_over_and_into_cover_every_assembly():
    assert sorted(OVER + INTO) == sorted(ASSET_IDS)


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


@pytest.mark.parametrize("clearance", CLEARANCES)
@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_rule2_grasp_heights_keep_pads_off_the_table_and_on_the_part(assemblies, asset_id, clearance):
    g = assemblies[(asset_id, clearance)]
    for role, mesh, site in _sites(g):
        z = site.center[2]
        assert z >= MIN_GRASP_Z - 1e-9, f"{role}: pads would come within 3 mm of the table"
        assert z - PAD_REACH_BELOW <= mesh.bounds[1, 2], f"{role}: pads would miss the part"
        # what the pads touch over their whole band is the recorded width, and the gripper closes on it
        band = _pad_band(mesh, site)
        touched = _band_extent(mesh, *band, np.asarray(site.closing_axis))
        assert touched == pytest.approx(site.width, abs=0.3 * MM), role
        assert touched < MAX_GRASP_WIDTH, role
        # the recorded height range is that band
        assert site.height_range == pytest.approx(band, abs=1e-9), role


@pytest.mark.parametrize("clearance", CLEARANCES)
@pytest.mark.parametrize("asset_id", OVER)
def test_rule3_over_plugs_rest_above_the_left_fingers(assemblies, asset_id, clearance):
    g = assemblies[(asset_id, clearance)]
    plug_bottom = g.assembled_plug_z + g.plug.bounds[0, 2]  # in the socket frame
    assert plug_bottom >= g.socket_grasp.center[2] + FINGER_RISE_BEHIND + HAND_GAP - 1e-9
    # it rests there on a shoulder of the socket, not on the fingers: lowering it further hits the socket
    assert _overlap_volume(_plug_in_socket(g, dz=-1.5 * clearance), g.socket) > 1e-10
    # and the socket's grasped lower section reaches up to (just under) that shoulder
    assert g.socket_grasp.height_range[1] <= plug_bottom


@pytest.mark.parametrize("clearance", CLEARANCES)
@pytest.mark.parametrize("asset_id", INTO)
def test_rule4_into_plugs_hold_the_right_pads_above_the_socket(assemblies, asset_id, clearance):
    g = assemblies[(asset_id, clearance)]
    lowest_pad = g.assembled_plug_z + g.plug_grasp.center[2] - PAD_REACH_BELOW  # socket frame
    assert lowest_pad >= g.socket_height + HAND_GAP - 1e-9
    assert g.socket.bounds[1, 2] == pytest.approx(g.socket_height)


def test_rule4_holds_for_the_tightest_clearance():
    """The into-fits lose height as the clearance shrinks; the rule must survive a near-zero gap."""
    for asset_id in INTO:
        g = make_assembly(asset_id, clearance=0.05 * MM)
        assert g.assembled_plug_z + g.plug_grasp.center[2] - PAD_REACH_BELOW >= g.socket_height + HAND_GAP


def _hand(center, closing, forward, width: float, gap: float) -> list[trimesh.Trimesh]:
    """Pads (first two boxes) and fingers of a gripper pitched 15 deg down, its pads `gap` outside `width`.

    `closing` and `forward` are horizontal unit vectors; the fingers point along `forward`, tips down.
    """
    closing, forward = np.asarray(closing, float), np.asarray(forward, float)
    along = math.cos(PITCH) * forward - math.sin(PITCH) * np.array((0.0, 0.0, 1.0))
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
    # the fingers point +y: their top edge 30 mm behind (y = -30 mm) is ~21 mm up
    top_at = math.tan(PITCH) * 30 * MM + PAD_HEIGHT / 2 / math.cos(PITCH)
    assert top_at == pytest.approx(FINGER_RISE_BEHIND, abs=0.5 * MM)


@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_pitched_pads_grasp_each_standing_part_along_every_symmetric_axis(assemblies, asset_id):
    g = assemblies[(asset_id, 1 * MM)]
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
                # pads 1 mm inside the width squeeze the part: contact happens
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


@pytest.mark.parametrize("clearance", CLEARANCES)
@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_assembled_hands_clear_each_other_and_the_other_part(assemblies, asset_id, clearance):
    g = assemblies[(asset_id, clearance)]
    closing = _parallel_socket_axis(g)
    side = np.cross((0.0, 0.0, 1.0), closing)
    plug = _plug_in_socket(g)
    right_center = np.asarray(g.plug_grasp.center) + (0.0, 0.0, g.assembled_plug_z)
    for left_forward in (side, -side):  # the expert's arms come from opposite sides; try every pairing
        left = _hand(g.socket_grasp.center, closing, left_forward, g.socket_grasp.width, gap=0.5 * MM)
        assert _hits(left, plug) < OVERLAP_EPS, "left hand hits the plug"
        assert _min_gap(left, plug) >= HAND_GAP, "left hand too close to the plug"
        for right_forward in (side, -side):
            right = _hand(right_center, closing, right_forward, g.plug_grasp.width, gap=0.5 * MM)
            assert _hits(right, g.socket) < OVERLAP_EPS, "right hand hits the socket"
            assert _min_gap(right, g.socket) >= HAND_GAP, "right hand too close to the socket"
            assert _hits(left, right) < OVERLAP_EPS, "the hands collide"
            assert _min_gap(left, right) >= HAND_GAP, "the hands come too close"


def test_assembled_hand_check_can_fail(assemblies):
    """Sanity check of the test above: a peg held 15 mm lower would put the right fingers on the block,
    and a bolt held 10 mm higher would put the left fingers on the nut."""
    for asset_id, plug_dz, socket_dz in (("00186", -15 * MM, 0.0), ("00581", 0.0, 10 * MM)):
        g = assemblies[(asset_id, 1 * MM)]
        closing = _parallel_socket_axis(g)
        side = np.cross((0.0, 0.0, 1.0), closing)
        right_center = np.asarray(g.plug_grasp.center) + (0.0, 0.0, g.assembled_plug_z + plug_dz)
        left_center = np.asarray(g.socket_grasp.center) + (0.0, 0.0, socket_dz)
        right = _hand(right_center, closing, side, g.plug_grasp.width, gap=0.5 * MM)
        left = _hand(left_center, closing, -side, g.socket_grasp.width, gap=0.5 * MM)
        hit = _hits(right, g.socket) if plug_dz else _hits(left, _plug_in_socket(g))
        assert hit > 1e-9, asset_id


# --------------------------------------------------------------------------------------------------
# Symmetry
# --------------------------------------------------------------------------------------------------

EXPECTED_GRASP_SYMMETRY = {  # (plug, socket)
    "00186": (8, 4),  # peg: round and flats within the squeeze; near-square block
    "00581": (6, 6),  # hex nut; hex bolt body
    "00446": (8, 8),  # round sleeve; round collar
    "00081": (4, 4),  # square grip; near-square housing
    "00007": (2, 8),  # collar held clear of its boss; round lower shaft
}
EXPECTED_YAW_SYMMETRY = {"00186": 0, "00581": 0, "00446": 2, "00081": 1, "00007": 0}


@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_symmetry_fields(assemblies, asset_id):
    g = assemblies[(asset_id, 1 * MM)]
    assert (g.plug_grasp.symmetry_order, g.socket_grasp.symmetry_order) == EXPECTED_GRASP_SYMMETRY[asset_id]
    assert g.yaw_symmetry == EXPECTED_YAW_SYMMETRY[asset_id]
    assert isinstance(g.yaw_symmetry, int) and isinstance(g.plug_grasp.symmetry_order, int)


@pytest.mark.parametrize("asset_id", ASSET_IDS)
def test_grasp_symmetry_order_axes_see_the_same_width(assemblies, asset_id):
    g = assemblies[(asset_id, 1 * MM)]
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
    g = assemblies[(asset_id, 1 * MM)]
    n = g.yaw_symmetry
    if n == 0:  # any yaw fits
        for yaw in (17.0, 45.0, 90.0, 133.0, 260.0):
            assert _overlap_volume(_plug_in_socket(g, yaw_deg=yaw), g.socket) < OVERLAP_EPS, yaw
    else:  # turning by 360/n fits, by half of that does not
        assert _overlap_volume(_plug_in_socket(g, yaw_deg=360.0 / n), g.socket) < OVERLAP_EPS
        assert _overlap_volume(_plug_in_socket(g, yaw_deg=180.0 / n), g.socket) > 1e-9


def test_tight_peg_has_two_fold_yaw_symmetry():
    """Below 0.4 mm clearance the peg's round sides no longer pass the hole's flats at any yaw."""
    g = make_assembly("00186", clearance=0.3 * MM)
    assert g.yaw_symmetry == 2
    assert _overlap_volume(_plug_in_socket(g, yaw_deg=180.0), g.socket) < OVERLAP_EPS
    assert _overlap_volume(_plug_in_socket(g, yaw_deg=90.0), g.socket) > 1e-9


def test_symmetry_fields_are_validated(assemblies):
    import dataclasses

    with pytest.raises(ValueError, match="symmetry_order"):
        GraspSite(center=(0, 0, 0.03), closing_axis=(1, 0, 0), width=0.03, height_range=(0, 0.05), symmetry_order=0)
    with pytest.raises(ValueError, match="yaw_symmetry"):
        dataclasses.replace(assemblies[("00186", 1 * MM)], yaw_symmetry=-1)


# --------------------------------------------------------------------------------------------------
# Loading real meshes
# --------------------------------------------------------------------------------------------------


def _export_mm(mesh: trimesh.Trimesh, path, offset=(0.0, 0.0, 0.0)):
    """Write a mesh scaled to millimetres and moved by `offset` [mm] (as CAD exports often are)."""
    m = mesh.copy()
    m.apply_scale(1000.0)
    m.apply_translation(offset)
    m.export(path)
    return path


def test_load_from_stl_and_obj_in_millimetres(tmp_path, assemblies):
    g = assemblies[("00581", 1 * MM)]
    plug = _export_mm(g.plug, tmp_path / "plug.stl", offset=(120.0, -40.0, 7.0))
    socket = _export_mm(g.socket, tmp_path / "socket.obj", offset=(-3.0, 5.0, 11.0))
    loaded = load_assembly_from_files(
        "nut_and_bolt", plug, socket, assembled_plug_z=g.assembled_plug_z, unit_scale=1e-3
    )
    np.testing.assert_allclose(loaded.plug.extents, g.spec.plug_bbox, atol=BBOX_TOL)
    np.testing.assert_allclose(loaded.socket.bounds, g.socket.bounds, atol=1e-6)  # re-centred
    assert loaded.plug.is_watertight and loaded.socket.is_watertight
    assert loaded.plug_mass == pytest.approx(g.plug_mass, rel=1e-4)
    assert loaded.insertion_depth == pytest.approx(g.insertion_depth)
    # the grasp sites found by slicing fit the gripper: plug held high, socket held low
    assert loaded.plug_grasp.width < GRIPPER_MAX_OBJECT_WIDTH
    assert loaded.plug_grasp.height_range[1] == pytest.approx(loaded.plug.extents[2])
    assert loaded.socket_grasp.height_range[0] == pytest.approx(0.0)
    # mid-band would put the socket's grasp at 15.8 mm; it is raised so the pitched pads clear the table
    assert loaded.socket_grasp.center[2] == pytest.approx(0.021)
    assert loaded.plug_grasp.symmetry_order == loaded.socket_grasp.symmetry_order == 2  # shape unknown
    assert loaded.yaw_symmetry == 1  # unknown fit: the expert aligns the yaw exactly
    again = load_assembly_from_files(
        "nut_and_bolt", plug, socket, assembled_plug_z=g.assembled_plug_z, unit_scale=1e-3, yaw_symmetry=np.int64(0)
    )
    assert again.yaw_symmetry == 0 and type(again.yaw_symmetry) is int
    with pytest.raises(TypeError):
        load_assembly_from_files("nut_and_bolt", plug, socket, g.assembled_plug_z, unit_scale=1e-3, yaw_symmetry=1.5)
    # the reloaded pair still fits
    assert _overlap_volume(_plug_in_socket(loaded), loaded.socket) < OVERLAP_EPS


def test_load_from_usd_applies_transforms_units_and_skips_guides(tmp_path, assemblies):
    from pxr import Gf, Usd, UsdGeom, Vt

    g = assemblies[("00186", 1 * MM)]
    path = tmp_path / "socket.usda"
    stage = Usd.Stage.CreateNew(str(path))
    UsdGeom.SetStageMetersPerUnit(stage, 0.01)  # centimetres
    xform = UsdGeom.Xform.Define(stage, "/socket")
    xform.AddTranslateOp().Set(Gf.Vec3d(30.0, -20.0, 5.0))
    xform.AddRotateZOp().Set(90.0)  # swaps the box's x and y extents
    for name, purpose in (("visual", UsdGeom.Tokens.default_), ("collision_proxy", UsdGeom.Tokens.guide)):
        mesh = UsdGeom.Mesh.Define(stage, f"/socket/{name}")
        scale = 100.0 if purpose == UsdGeom.Tokens.default_ else 300.0  # the guide mesh is 3x bigger
        mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy((g.socket.vertices * scale).astype(np.float32)))
        mesh.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(np.full(len(g.socket.faces), 3, dtype=np.int32)))
        mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(g.socket.faces.ravel().astype(np.int32)))
        mesh.CreatePurposeAttr(purpose)
    stage.GetRootLayer().Save()

    plug = tmp_path / "plug.ply"
    g.plug.export(plug)  # metres, like the USD file once its metersPerUnit is applied
    loaded = load_assembly_from_files("00186", plug, path, assembled_plug_z=g.assembled_plug_z)
    # extents in metres (cm converted, guide skipped), x/y swapped by the 90 deg turn, re-centred
    np.testing.assert_allclose(loaded.socket.extents, np.asarray(g.spec.socket_bbox)[[1, 0, 2]], atol=1e-5)
    np.testing.assert_allclose(loaded.socket.bounds[0], [-0.0276, -0.0275, 0.0], atol=1e-5)
    assert loaded.socket.is_watertight and loaded.socket.volume == pytest.approx(g.socket.volume, rel=1e-4)


def test_usd_quads_are_triangulated_and_left_handed_meshes_flipped(tmp_path):
    from pxr import Usd, UsdGeom

    cube = trimesh.creation.box(extents=(0.03, 0.04, 0.05))
    # a quad cube written twice: right-handed with outward winding, left-handed with reversed winding
    quads = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
    corners = np.array([[x, y, z] for x in (-0.015, 0.015) for y in (-0.02, 0.02) for z in (0.0, 0.05)])
    paths = []
    for orientation, faces in (
        (UsdGeom.Tokens.rightHanded, quads),
        (UsdGeom.Tokens.leftHanded, [f[::-1] for f in quads]),
    ):
        path = tmp_path / f"cube_{orientation}.usda"
        stage = Usd.Stage.CreateNew(str(path))
        UsdGeom.SetStageMetersPerUnit(stage, 1.0)
        mesh = UsdGeom.Mesh.Define(stage, "/cube")
        mesh.CreatePointsAttr([tuple(p) for p in corners])
        mesh.CreateFaceVertexCountsAttr([4] * 6)
        mesh.CreateFaceVertexIndicesAttr([i for f in faces for i in f])
        mesh.CreateOrientationAttr(orientation)
        stage.GetRootLayer().Save()
        paths.append(path)
    from vt_refine.assets.parts import load_part_mesh

    for path in paths:
        loaded = load_part_mesh(path)
        assert len(loaded.faces) == 12
        assert loaded.is_watertight and loaded.is_winding_consistent
        assert loaded.volume == pytest.approx(cube.volume, rel=1e-6)  # positive: faces point outwards


def test_load_errors_are_clear(tmp_path, assemblies):
    g = assemblies[("00186", 1 * MM)]
    good = _export_mm(g.plug, tmp_path / "plug.stl")
    with pytest.raises(MeshFileNotFoundError, match="not found"):
        load_assembly_from_files("00186", tmp_path / "missing.stl", good, assembled_plug_z=0.01, unit_scale=1e-3)
    (tmp_path / "plug.step").write_text("ISO-10303-21;")
    with pytest.raises(MeshFormatError, match=r"Unsupported mesh extension '\.step'"):
        load_assembly_from_files("00186", tmp_path / "plug.step", good, assembled_plug_z=0.01, unit_scale=1e-3)
    # (the plug file passed as the socket also trips the box-size warning)
    with pytest.warns(RuntimeWarning, match="extents"), pytest.raises(ValueError, match="assembled_plug_z"):
        load_assembly_from_files("00186", good, good, assembled_plug_z=1.0, unit_scale=1e-3)


def test_open_meshes_and_wrong_units_warn(tmp_path, assemblies):
    g = assemblies[("00186", 1 * MM)]
    open_plug = g.plug.copy()
    open_plug.update_faces(np.arange(len(open_plug.faces)) != 0)  # punch a hole: drop one triangle
    plug = _export_mm(open_plug, tmp_path / "plug_open.obj")
    socket = _export_mm(g.socket, tmp_path / "socket.stl")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_assembly_from_files("00186", plug, socket, assembled_plug_z=g.assembled_plug_z, unit_scale=1e-3)
    messages = [str(w.message) for w in caught]
    assert any("not watertight" in m for m in messages)
    assert loaded.plug_mass > 0
    with pytest.warns(RuntimeWarning, match="unit_scale"):
        # cm instead of mm: the boxes come out 10x too large (the socket block is 0.55 m, too wide to grasp)
        with pytest.raises(MeshFormatError, match="gripper limit"):
            load_assembly_from_files("00186", socket, socket, assembled_plug_z=0.01, unit_scale=1e-2)
