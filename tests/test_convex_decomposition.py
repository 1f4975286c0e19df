"""Tests of the layered convex decomposition of the assembly parts (vt_refine.assets.convex_decomposition)
and of the part USD files that collide through it (vt_refine.assets.parts_usd)."""

from __future__ import annotations

import math

import manifold3d
import numpy as np
import pytest
import shapely.geometry as sg
import trimesh
from scipy.spatial import ConvexHull

from vt_refine.assets.convex_decomposition import (
    DEFAULT_CFG,
    ConvexDecompositionError,
    convex_partition,
    decompose_layered,
)
from vt_refine.assets.polygon_simplify import simplify_polygon
from vt_refine.assets.part_designs import make_assembly
from vt_refine.assets.parts import ASSEMBLY_SPECS, MM

ASSET_IDS = list(ASSEMBLY_SPECS)
ROLES = ("plug", "socket")
MAX_PIECES = 60  # per part: the budget the simulation was tuned for (the collar's 43 mm bore takes 43)
MAX_ADDED = 0.15 * MM  # no point of a piece may lie further than this outside the true part
DEEP = 0.5 * MM  # interior points deeper than this must be covered
OVERLAP_EPS = 1e-12  # m^3 = 0.001 mm^3: numerical zero for an intersection volume


def _manifold(mesh: trimesh.Trimesh) -> manifold3d.Manifold:
    m = manifold3d.Manifold(
        manifold3d.Mesh64(
            vert_properties=np.array(mesh.vertices, dtype=np.float64, order="C"),
            tri_verts=np.array(mesh.faces, dtype=np.uint64, order="C"),
        )
    )
    assert m.status() == manifold3d.Error.NoError
    return m


@pytest.fixture(scope="module")
def decomposed():
    """{(asset id, role): (true mesh, pieces)} for every part at its measured play, decomposed as the simulation's
    USD files are (the layered method within 9 % of the play), plus the geometries."""
    from vt_refine.assets.parts_usd import collision_pieces

    out, geometries = {}, {}
    for key in ASSET_IDS:
        geometry = make_assembly(key)
        geometries[key] = geometry
        for role in ROLES:
            mesh = getattr(geometry, role)
            pieces, method = collision_pieces(mesh, geometry.clearance)
            assert method.startswith("layered"), method  # every procedural part is a stack of prisms
            out[(key, role)] = (mesh, pieces)
    return out, geometries


PARTS = [(key, role) for key in ASSET_IDS for role in ROLES]


def _ids(params):
    key, role = params
    return f"{ASSEMBLY_SPECS[key].name}-{role}"


@pytest.mark.parametrize("part", PARTS, ids=_ids)
def test_pieces_are_convex_watertight_and_few(decomposed, part):
    _, pieces = decomposed[0][part]
    assert 1 <= len(pieces) <= MAX_PIECES
    for piece in pieces:
        assert piece.is_watertight and piece.is_winding_consistent
        hull_volume = ConvexHull(piece.vertices).volume
        assert piece.volume > 0
        assert abs(piece.volume - hull_volume) <= 1e-9 * hull_volume  # the piece is its own convex hull
        assert len(piece.vertices) <= DEFAULT_CFG.max_hull_vertices  # Newton keeps it as authored


def _cube(half: float) -> manifold3d.Manifold:
    return manifold3d.Manifold.cube([2 * half] * 3, center=True)


@pytest.mark.parametrize("part", PARTS, ids=_ids)
def test_union_matches_part_and_adds_no_material(decomposed, part):
    mesh, pieces = decomposed[0][part]
    solid = _manifold(mesh)
    union = manifold3d.Manifold.batch_boolean([_manifold(p) for p in pieces], manifold3d.OpType.Add)
    # the simplification removes up to 9 % of the play from bores: 5 % of the collar's 4 mm thin ring
    assert union.volume() == pytest.approx(mesh.volume, rel=0.05)
    # Exact containment, no sampling (trimesh's closest-point query misjudges the booleans' sliver triangles
    # by tenths of a mm): the part grown by a cube of half-size h holds every point within h of it, and the
    # cube lies inside the ball of radius h sqrt(3).
    grown = solid.minkowski_sum(_cube(MAX_ADDED / math.sqrt(3)))
    assert (union - grown).is_empty(), "a piece sticks more than 0.15 mm out of the part"
    # the design only removes material: what sticks out at all is boolean round-off (< 10 um)
    assert (union - solid.minkowski_sum(_cube(5e-6))).is_empty()


@pytest.mark.parametrize("part", PARTS, ids=_ids)
def test_pieces_cover_the_part_interior(decomposed, part):
    mesh, pieces = decomposed[0][part]
    solid = _manifold(mesh)
    lo, hi = mesh.bounds
    box = manifold3d.Manifold.cube(list(hi - lo + 4 * DEEP)).translate(list(lo - 2 * DEEP))
    # points whose cube of half-size DEEP lies in the part: all of them are deeper than DEEP
    deep = solid - (box - solid).minkowski_sum(_cube(DEEP))
    assert deep.volume() > 0.5 * mesh.volume
    union = manifold3d.Manifold.batch_boolean([_manifold(p) for p in pieces], manifold3d.OpType.Add)
    covered = (deep ^ union).volume() / deep.volume()
    assert covered >= 0.99, f"only {covered:.2%} of the interior deeper than 0.5 mm is covered"


def _pair_overlap(plug_pieces, socket_pieces, transform: np.ndarray) -> float:
    total = 0.0
    socket = [(p.bounds, _manifold(p)) for p in socket_pieces]
    for piece in plug_pieces:
        moved = piece.copy()
        moved.apply_transform(transform)
        m = _manifold(moved)
        for (lo, hi), s in socket:
            if np.all(moved.bounds[0] < hi) and np.all(lo < moved.bounds[1]):
                total += (m ^ s).volume()
    return total


@pytest.mark.parametrize("key", ASSET_IDS, ids=lambda k: ASSEMBLY_SPECS[k].name)
def test_fit_still_works(decomposed, key):
    parts, geometries = decomposed
    geometry = geometries[key]
    plug_pieces, socket_pieces = parts[(key, "plug")][1], parts[(key, "socket")][1]
    assembled = geometry.assembled_plug_transform()
    assert _pair_overlap(plug_pieces, socket_pieces, assembled) <= OVERLAP_EPS
    shifted = assembled.copy()
    shifted[0, 3] += geometry.clearance + 1.5 * MM  # past the play sideways: the pieces must collide
    assert _pair_overlap(plug_pieces, socket_pieces, shifted) > 1.0 * MM**3


def test_decomposition_is_deterministic(decomposed):
    key = "00007"  # the collar: most layers, most merges
    from vt_refine.assets.parts_usd import collision_pieces

    first = decomposed[0][(key, "plug")][1]
    geometry = make_assembly(key)
    again, _ = collision_pieces(geometry.plug, geometry.clearance)
    assert len(again) == len(first)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.vertices, b.vertices)
        np.testing.assert_array_equal(a.faces, b.faces)


def test_piece_counts(decomposed):
    """Holes cost pieces (a convex piece touches at most one facet of a bore); solid parts need few."""
    counts = {f"{ASSEMBLY_SPECS[k].name}-{r}": len(p) for (k, r), (_, p) in decomposed[0].items()}
    print("convex pieces per part:", counts)
    assert counts["peg_in_hole-plug"] <= 10  # a chamfered convex peg
    assert counts["nut_and_bolt-socket"] <= 4  # hex head + chamfered round shank
    assert counts["shaft_collar-socket"] <= 4  # base + chamfered shaft
    for bored in ("peg_in_hole-socket", "nut_and_bolt-plug", "bayonet-socket", "shaft_collar-plug",
                  "mechanical_connector-plug"):
        assert 12 <= counts[bored] <= MAX_PIECES


def test_a_part_that_is_not_a_stack_of_prisms_goes_to_coacd():
    """A ball on a flange (hundreds of vertex heights): the layered method refuses it, CoACD's pieces stay on
    the part, and the method says so."""
    from vt_refine.assets.parts_usd import collision_pieces

    ball = trimesh.creation.icosphere(subdivisions=4, radius=0.02)
    flange = trimesh.creation.cylinder(radius=0.03, height=0.006, sections=48)
    part = trimesh.boolean.union([ball, flange], engine="manifold")
    pieces, method = collision_pieces(part, 0.002)
    assert method.startswith("CoACD") and "layered method refused" in method
    assert 1 <= len(pieces) <= 64
    for piece in pieces:
        assert piece.is_watertight and piece.volume > 0 and len(piece.vertices) <= 64
    union = manifold3d.Manifold.batch_boolean([_manifold(p) for p in pieces], manifold3d.OpType.Add)
    # hulls decimated to Newton's 64 vertices cut the ball's facets: ~10 % of its volume
    assert union.volume() == pytest.approx(part.volume, rel=0.15)
    assert (union - _manifold(part).minkowski_sum(_cube(0.5 * MM))).is_empty()  # nothing 0.5 mm out of the part


# ---------------------------------------------------------------------------------------------------
# 2-D building blocks
# ---------------------------------------------------------------------------------------------------


def _regular(radius: float, n: int) -> np.ndarray:
    theta = np.arange(n) * 2 * math.pi / n
    return radius * np.column_stack((np.cos(theta), np.sin(theta)))


def test_simplify_only_removes_material_within_tolerance():
    tol = 0.09 * MM
    block = sg.Polygon(_regular(30 * MM, 96), [_regular(17.5 * MM, 96)])  # round boss with a bore
    simple = simplify_polygon(block, tol)
    assert len(simple.exterior.coords) < 96 and len(simple.interiors[0].coords) <= 33
    assert simple.difference(block).area <= 1e-15  # nothing added: the bore only widens, the outline only shrinks
    assert block.hausdorff_distance(simple) <= tol * 1.001
    # the simplified bore contains the true one: a plug fitting the true bore fits the simplified one
    assert sg.Polygon(simple.interiors[0]).buffer(1e-12).contains(sg.Polygon(_regular(17.5 * MM, 96)))


def test_partition_of_annulus_gives_one_piece_per_bore_facet():
    block = sg.box(-30 * MM, -30 * MM, 30 * MM, 30 * MM).difference(sg.Polygon(_regular(15 * MM, 24)))
    pieces = convex_partition(block)
    assert len(pieces) == 24  # the minimum: a convex piece touches at most one facet of a convex hole
    polygons = [sg.Polygon(p) for p in pieces]
    assert all(abs(p.area - p.convex_hull.area) <= 1e-12 * p.area for p in polygons)
    assert sum(p.area for p in polygons) == pytest.approx(block.area, rel=1e-9)  # a partition: no overlaps
    assert sg.MultiPolygon(polygons).buffer(0).symmetric_difference(block).area <= 1e-9 * block.area


def test_non_prism_mesh_is_refused():
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.02)  # hundreds of vertex heights
    with pytest.raises(ConvexDecompositionError):
        decompose_layered(sphere)


# ---------------------------------------------------------------------------------------------------
# USD files
# ---------------------------------------------------------------------------------------------------


def test_part_usd_with_convex_pieces(tmp_path, decomposed):
    from pxr import Usd, UsdGeom, UsdPhysics, UsdShade

    from vt_refine.assets.parts_usd import write_part_usd

    mesh, pieces = decomposed[0][("00186", "socket")]
    path = tmp_path / "socket.usda"
    write_part_usd(path, mesh.vertices, mesh.faces, 0.08, (0.5, 0.5, 0.5), pieces=pieces)
    stage = Usd.Stage.Open(str(path))
    body = stage.GetPrimAtPath("/part")
    assert body.HasAPI(UsdPhysics.RigidBodyAPI)
    assert UsdPhysics.MassAPI(body).GetMassAttr().Get() == pytest.approx(0.08)
    meshes = [p for p in Usd.PrimRange(body) if p.IsA(UsdGeom.Mesh)]
    visual = meshes[0]
    assert visual.GetPath() == "/part/mesh" and not visual.HasAPI(UsdPhysics.CollisionAPI)
    assert len(UsdGeom.Mesh(visual).GetFaceVertexCountsAttr().Get()) == len(mesh.faces)
    colliders = meshes[1:]
    assert len(colliders) == len(pieces)
    for prim in colliders:
        assert str(prim.GetPath()).startswith("/part/collision/piece_")
        assert prim.HasAPI(UsdPhysics.CollisionAPI)
        assert UsdPhysics.MeshCollisionAPI(prim).GetApproximationAttr().Get() == "convexHull"
        assert UsdGeom.Imageable(prim).ComputePurpose() == UsdGeom.Tokens.guide
        assert prim.GetAttribute("mjc:solimp").Get() is not None
        bound, _ = UsdShade.MaterialBindingAPI(prim).ComputeBoundMaterial("physics")
        assert bound.GetPath() == "/part/material"


def test_part_usd_triangle_mesh_option(tmp_path):
    from pxr import Usd, UsdGeom, UsdPhysics

    from vt_refine.assets.parts_usd import write_part_usd

    box = trimesh.creation.box((0.02, 0.02, 0.02))
    path = tmp_path / "box.usda"
    write_part_usd(path, box.vertices, box.faces, 0.01, (0.5, 0.5, 0.5), collision_approximation="none")
    stage = Usd.Stage.Open(str(path))
    meshes = [p for p in Usd.PrimRange(stage.GetPrimAtPath("/part")) if p.IsA(UsdGeom.Mesh)]
    assert [str(p.GetPath()) for p in meshes] == ["/part/mesh"]
    assert meshes[0].HasAPI(UsdPhysics.CollisionAPI)
    assert UsdPhysics.MeshCollisionAPI(meshes[0]).GetApproximationAttr().Get() == "none"
    assert not stage.GetPrimAtPath("/part/collision")


def test_assembly_usd_paths_default_to_convex_pieces(tmp_path, monkeypatch):
    from pxr import Usd, UsdGeom

    from vt_refine.assets.parts_usd import procedural_assembly_usd_paths

    monkeypatch.setenv("VT_REFINE_CACHE_DIR", str(tmp_path))
    plug, socket = procedural_assembly_usd_paths("NutAndBolt")
    for path in (plug, socket):
        stage = Usd.Stage.Open(str(path))
        pieces = [p for p in Usd.PrimRange(stage.GetPrimAtPath("/part/collision")) if p.IsA(UsdGeom.Mesh)]
        assert 1 <= len(pieces) <= MAX_PIECES
    plug_tri, _ = procedural_assembly_usd_paths("NutAndBolt", collision_approximation="none")
    assert plug_tri != plug
    assert not Usd.Stage.Open(str(plug_tri)).GetPrimAtPath("/part/collision")
