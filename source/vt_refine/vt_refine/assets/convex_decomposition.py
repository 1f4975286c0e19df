"""Exact-ish convex decomposition of parts that are stacks of z-extrusions (prisms with holes, small chamfers).

Newton's CPU collision pipeline handles convex shapes far better than triangle meshes (gripper pads sink
into a triangle surface; convex pairs are cheaper), and general tools (CoACD: 32 pieces, 8 mm off on the peg
socket) miss 1 mm fits. The procedural assembly parts are z-prisms with bores, slots and keys, so they decompose
almost exactly:

1. **Layers.** The part is cut at the heights of its vertices; between two consecutive heights every face
   spans the slab, so the slab's cross-section changes linearly and the intersection of its bottom, middle
   and top sections (the *narrower* section) lies inside the part over the whole slab. Neighbouring slabs
   are merged (their sections intersected) while that removes no more than ``layer_tol`` of depth and
   ``layer_volume_frac`` of the part's volume; a chamfer thus becomes a few thin layers.
2. **One-sided ring simplification** (:mod:`.polygon_simplify`). Each ring of a section is simplified so that material is only ever
   removed, by at most ``simplify_tol``: runs of vertices that bulge outwards (a boss, an outline) are
   replaced by chords, runs that bulge into the material (a bore, a slot floor) by the intersections of a
   subset of their own edge lines (a circumscribed polygon of the hole). Which vertices or edges are kept is
   decided on a global grid of edge directions (the grid size that keeps fewest wins), so the same bore
   simplifies identically in every layer.
3. **Convex partition.** Every reflex vertex is resolved by a cut along its angle bisector up to the first
   boundary or earlier cut; the arrangement is polygonised and neighbouring faces whose union is convex are
   merged. A bore of ``n`` edges needs ``n`` pieces around it (a convex piece cannot touch two edges of a
   convex hole), which this reaches: a bisector cut from every hole vertex gives the ``n`` sector pieces.
4. **Prisms and 3-D merging.** Each convex polygon becomes a prism over its layer; prisms with the same
   footprint in adjacent layers are stacked, then any two touching pieces whose convex hull stays inside the
   part (manifold3d booleans: at most ``hull_slack`` outside, and within ``hull_depth`` of the part) are
   replaced by that hull. This recovers chamfers (the hull of two staircase steps of a 45 deg chamfer is the
   chamfered piece) and joins pieces split by layers. A hull may not exceed Newton's 64 vertices.

The result removes material only (never adds any beyond boolean round-off, a few micrometres), so a clearance
fit of the true parts stays a clearance fit of the pieces; pieces may overlap. Units: metres.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import manifold3d
import numpy as np
import shapely
import shapely.geometry as sg
import shapely.ops
import trimesh
from shapely.geometry.polygon import orient

from .polygon_simplify import ANGLE_EPS, drop_straight, ring_turns, simplify_polygon

MM = 1e-3
"""Metres per millimetre."""


class ConvexDecompositionError(RuntimeError):
    """A mesh the layered decomposition cannot represent within its limits (not a stack of prisms)."""


@dataclass(frozen=True)
class LayeredDecompositionCfg:
    """Tolerances and limits of :func:`decompose_layered` (lengths in m, volumes in m^3)."""

    simplify_tol: float = 0.09 * MM
    """Most material a simplified section ring removes: 9 % of a 1 mm clearance; lets a 96-gon bore of
    radius up to 21 mm become a 32-gon."""
    layer_tol: float = 0.3 * MM
    """Most material merging two slabs removes; features thinner than this (the collar's set-screw boss, which
    stands 0.2 mm proud of the round and up to 0.26 mm proud of its facets) are dropped rather than layered."""
    layer_volume_frac: float = 0.001
    """...and at most this fraction of the part's volume per merged layer (a thin chamfer slab must not
    narrow the 73 mm peg above it)."""
    level_tol: float = 1e-6
    """Vertex heights closer than this are one level [m]."""
    noise_tol: float = 1e-7
    """Sections are cleaned of vertices within 0.1 um of a straight line (round-off of the section booleans) [m]."""
    max_levels: int = 400
    """More distinct vertex heights than this means the mesh is not a stack of prisms."""
    max_pieces: int = 80
    """Raise :class:`ConvexDecompositionError` when the decomposition needs more pieces (the procedural parts
    need at most 58 at any clearance; a real mesh that is not a stack of prisms needs far more)."""
    max_hull_vertices: int = 64
    """Newton's ``Mesh.MAX_HULL_VERTICES``: a larger hull would be re-approximated on import."""
    hull_slack: float = 1e-12
    """Volume a merged hull may stick out of the part: 0.001 mm^3, boolean round-off [m^3]..."""
    hull_depth: float = 0.005 * MM
    """...and how far out, per axis: 5 um (a sliver of small volume can still reach out a tenth of a mm)."""
    min_piece_volume: float = 1e-12
    """Pieces below this volume (numerical slivers) are dropped [m^3]."""
    hull_merge: bool = True
    """Replace touching pieces by their hull where it stays inside the part (chamfers, split pieces)."""


DEFAULT_CFG = LayeredDecompositionCfg()

_SLICE_INSET = 1e-9  # sections are taken this far inside a slab [m]


# ---------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------


def decompose_layered(mesh: trimesh.Trimesh, cfg: LayeredDecompositionCfg = DEFAULT_CFG) -> list[trimesh.Trimesh]:
    """Convex pieces whose union reproduces a watertight part made of z-extrusions.

    Args:
        mesh: closed part mesh [m], z being the extrusion axis.
        cfg: tolerances and limits.

    Returns:
        Watertight convex meshes, ordered by height then angle about the part's z axis; the same mesh gives
        the same pieces. Every piece lies inside ``mesh`` up to boolean round-off.

    Raises:
        ConvexDecompositionError: for a mesh that is not closed, has too many distinct vertex heights, or
            needs more than ``cfg.max_pieces`` pieces.
    """
    if not mesh.is_watertight or mesh.volume <= 0:
        raise ConvexDecompositionError("decompose_layered needs a closed, outward-facing mesh.")
    solid = _to_manifold(mesh)
    levels = _levels(np.asarray(mesh.vertices)[:, 2], cfg.level_tol)
    if len(levels) - 1 > cfg.max_levels:
        raise ConvexDecompositionError(
            f"mesh has {len(levels)} distinct vertex heights (> {cfg.max_levels}); it is not a stack of z-prisms."
        )
    prisms = []
    for z0, z1, section in _layers(solid, levels, cfg, float(mesh.volume)):
        for polygon in _polygons(section):
            simplified = simplify_polygon(polygon, cfg.simplify_tol)
            for ring in convex_partition(simplified):
                # a prism has twice its footprint's vertices
                prisms.extend((part, z0, z1) for part in _split_large(ring, cfg.max_hull_vertices // 2))
    pieces = [_prism(ring, z0, z1) for ring, z0, z1 in _stack(prisms)]
    pieces = [p for p in pieces if len(p.faces) and p.volume >= cfg.min_piece_volume]
    if cfg.hull_merge:
        pieces = _merge_hulls(pieces, solid, cfg)
    pieces = _ordered(pieces)
    if len(pieces) > cfg.max_pieces:
        raise ConvexDecompositionError(f"decomposition needs {len(pieces)} pieces (> max_pieces={cfg.max_pieces}).")
    return pieces


def convex_partition(polygon: sg.Polygon) -> list[np.ndarray]:
    """Few convex polygons (arrays of shape (k, 2), CCW, not closed) whose union is ``polygon`` (holes allowed)."""
    polygon = orient(polygon, 1.0)
    if not polygon.interiors and _is_convex(np.asarray(polygon.exterior.coords)[:-1]):
        return [_clean_convex(np.asarray(polygon.exterior.coords)[:-1])]
    faces = _cut_faces(polygon)
    faces = _merge_convex_faces(faces)
    out = []
    for face in faces:
        ring = np.asarray(orient(face, 1.0).exterior.coords)[:-1]
        if _is_convex(ring):
            out.append(_clean_convex(ring))
        else:  # numerical trouble in the arrangement: partition this simple face on its own
            out.extend(convex_partition(face) if face.area < polygon.area * (1 - 1e-9) else _triangles(face))
    return out


# ---------------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------------


def _to_manifold(mesh: trimesh.Trimesh) -> manifold3d.Manifold:
    solid = manifold3d.Manifold(
        manifold3d.Mesh64(
            # fresh writeable copies: nanobind refuses trimesh's read-only cached views
            vert_properties=np.array(mesh.vertices, dtype=np.float64, order="C").reshape(-1, 3),
            tri_verts=np.array(mesh.faces, dtype=np.uint64, order="C").reshape(-1, 3),
        )
    )
    if solid.status() != manifold3d.Error.NoError:
        raise ConvexDecompositionError(f"mesh is not a closed manifold ({solid.status()}).")
    return solid


def _levels(z: np.ndarray, tol: float) -> np.ndarray:
    """Sorted distinct heights, values closer than ``tol`` collapsed onto the lowest."""
    z = np.sort(z)
    keep = np.concatenate(([True], np.diff(z) > tol))
    return z[keep]


def _section(solid: manifold3d.Manifold, z: float):
    """Cross-section of the solid at height z as a shapely (Multi)Polygon (even-odd over the contours)."""
    region = sg.Polygon()
    for contour in solid.slice(z).to_polygons():
        if len(contour) >= 3:
            region = region.symmetric_difference(sg.Polygon(np.asarray(contour, dtype=np.float64)).buffer(0))
    return region.buffer(0)


def _layers(solid: manifold3d.Manifold, levels: np.ndarray, cfg: LayeredDecompositionCfg, part_volume: float):
    """(z0, z1, section) of merged slabs, bottom up; the section lies inside the part over [z0, z1]."""
    slabs = []
    for z0, z1 in itertools.pairwise(levels):
        h = z1 - z0
        # bottom, middle and top, 1 nm inside the slab (a section exactly at a vertex height is degenerate;
        # 1 nm in, a 45 deg face has moved 1 nm): the narrower section (faces are linear in between)
        section = _section(solid, z0 + _SLICE_INSET)
        for z in (z0 + 0.5 * h, z1 - _SLICE_INSET):
            section = section.intersection(_section(solid, z))
        slabs.append((z0, z1, _drop_slivers(section.simplify(cfg.noise_tol))))
    layers = []
    group = []  # slabs of the current layer
    for slab in slabs:
        if slab[2].is_empty:
            _flush(layers, group)
            group = []
            continue
        if group:
            merged = _drop_slivers(group[-1][3].intersection(slab[2]).simplify(cfg.noise_tol))
            members = [*group, slab]
            volume = sum(s[2].area * (s[1] - s[0]) for s in members)
            lost = volume - merged.area * (members[-1][1] - members[0][0])
            if lost <= cfg.layer_volume_frac * part_volume and all(
                _within(s[2], merged, cfg.layer_tol) for s in members
            ):
                group.append((*slab, merged))
                continue
            _flush(layers, group)
        group = [(*slab, slab[2])]
    _flush(layers, group)
    return layers


def _flush(layers: list, group: list) -> None:
    if group and not group[-1][3].is_empty:
        layers.append((group[0][0], group[-1][1], group[-1][3]))


def _within(section, inner, tol: float) -> bool:
    """Every point of ``section`` lies within ``tol`` of ``inner`` (inner being a subset of section)."""
    if inner.is_empty:
        return False
    return section.difference(inner.buffer(tol, quad_segs=16)).area <= 1e-9 * max(section.area, 1e-12)


def _drop_slivers(geometry, min_area: float = 1e-10):
    """Remove polygons smaller than 1e-4 mm^2 (boolean debris)."""
    polys = [p for p in _polygons(geometry) if p.area > min_area]
    return shapely.union_all(polys) if polys else sg.Polygon()


def _polygons(geometry) -> list[sg.Polygon]:
    if geometry.is_empty:
        return []
    if isinstance(geometry, sg.Polygon):
        return [geometry]
    return [g for g in getattr(geometry, "geoms", []) if isinstance(g, sg.Polygon) and not g.is_empty]


# ---------------------------------------------------------------------------------------------------
# Convex partition
# ---------------------------------------------------------------------------------------------------


def _is_convex(ring: np.ndarray, eps: float = 1e-7) -> bool:
    """A CCW ring without reflex vertices (collinear allowed)."""
    ring = ring[np.linalg.norm(ring - np.roll(ring, 1, axis=0), axis=1) > 1e-12]
    return len(ring) >= 3 and bool(np.all(ring_turns(ring) > -eps))


def _clean_convex(ring: np.ndarray) -> np.ndarray:
    """The convex hull's vertices (CCW): drops collinear points and round-off dents."""
    hull = sg.MultiPoint(ring).convex_hull
    return np.asarray(orient(hull, 1.0).exterior.coords)[:-1]


def _reflex_vertices(polygon: sg.Polygon) -> list[tuple[np.ndarray, np.ndarray]]:
    """(vertex, bisector into the material) for every reflex vertex; holes first, each ring from its lowest x, y."""
    out = []
    for ring in (*polygon.interiors, polygon.exterior):
        pts = drop_straight(np.asarray(ring.coords)[:-1])
        start = int(np.lexsort((pts[:, 1], pts[:, 0]))[0])
        pts = np.roll(pts, -start, axis=0)
        turns = ring_turns(pts)
        for i in np.flatnonzero(turns < -ANGLE_EPS):
            d_in = pts[i - 1] - pts[i]
            d_out = pts[(i + 1) % len(pts)] - pts[i]
            bisector = -(d_in / np.linalg.norm(d_in) + d_out / np.linalg.norm(d_out))
            norm = np.linalg.norm(bisector)
            if norm < 1e-12:
                continue
            out.append((pts[i], bisector / norm))
    return out


def _ray_hit(origin: np.ndarray, direction: np.ndarray, segments: np.ndarray, min_t: float) -> float | None:
    """Smallest t > min_t where origin + t direction meets one of the segments (shape (S, 2, 2))."""
    a = segments[:, 0]
    ab = segments[:, 1] - a
    denom = direction[0] * ab[:, 1] - direction[1] * ab[:, 0]
    ok = np.abs(denom) > 1e-18
    ao = a - origin
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (ao[:, 0] * ab[:, 1] - ao[:, 1] * ab[:, 0]) / denom
        s = (ao[:, 0] * direction[1] - ao[:, 1] * direction[0]) / denom
    valid = ok & (t > min_t) & (s >= -1e-12) & (s <= 1 + 1e-12)
    if not valid.any():
        return None
    return float(t[valid].min())


def _cut_faces(polygon: sg.Polygon) -> list[sg.Polygon]:
    """Faces of the polygon cut along the bisector of every reflex vertex, each cut ending at the first hit."""
    scale = math.sqrt(polygon.area)
    boundary = []
    for ring in (polygon.exterior, *polygon.interiors):
        pts = np.asarray(ring.coords)
        boundary.extend(itertools.pairwise(pts))
    segments = np.asarray(boundary, dtype=np.float64)
    cuts = []
    for vertex, direction in _reflex_vertices(polygon):
        t = _ray_hit(vertex, direction, segments, min_t=1e-9 * scale)
        if t is None:
            continue
        # overshoot a hair so the noding surely splits the edge it hits; polygonize drops the dangling tip
        end = vertex + direction * (t + 1e-9 * scale)
        cuts.append((vertex, end))
        segments = np.concatenate((segments, [[vertex, vertex + direction * t]]))
    lines = [sg.LineString(s) for s in boundary] + [sg.LineString(c) for c in cuts]
    noded = shapely.union_all(lines)
    faces = []
    inner = polygon.buffer(-1e-9 * scale)
    for face in shapely.ops.polygonize(noded):
        if face.area > 1e-12 * polygon.area and inner.contains(face.representative_point()):
            faces.append(face)
    return faces


def _merge_convex_faces(faces: list[sg.Polygon]) -> list[sg.Polygon]:
    """Greedily merge neighbouring faces whose union is convex (undoes cuts that were not needed)."""
    faces = list(faces)
    merged = True
    while merged:
        merged = False
        for i in range(len(faces)):
            for j in range(i + 1, len(faces)):
                shared = faces[i].boundary.intersection(faces[j].boundary)
                if shared.length <= 0:
                    continue
                union = shapely.union(faces[i], faces[j])
                if not isinstance(union, sg.Polygon) or union.interiors:
                    continue
                if union.convex_hull.area <= union.area * (1 + 1e-9):
                    faces[i] = union.simplify(0)
                    del faces[j]
                    merged = True
                    break
            if merged:
                break
    return faces


def _triangles(face: sg.Polygon) -> list[np.ndarray]:
    """Constrained triangulation of a face (last resort)."""
    triangles = _polygons(shapely.constrained_delaunay_triangles(face))
    return [_clean_convex(np.asarray(t.exterior.coords)[:-1]) for t in triangles if t.area > 0]


def _split_large(ring: np.ndarray, max_vertices: int) -> list[np.ndarray]:
    """Halve a convex ring along a diagonal until each part has at most max_vertices vertices."""
    if len(ring) <= max_vertices:
        return [ring]
    half = len(ring) // 2
    return _split_large(ring[: half + 1], max_vertices) + _split_large(np.vstack((ring[half:], ring[:1])), max_vertices)


# ---------------------------------------------------------------------------------------------------
# Prisms and 3-D merging
# ---------------------------------------------------------------------------------------------------


def _footprint_key(ring: np.ndarray) -> frozenset:
    return frozenset(map(tuple, np.round(ring / 1e-9).astype(np.int64).tolist()))


def _stack(prisms: list[tuple[np.ndarray, float, float]]) -> list[tuple[np.ndarray, float, float]]:
    """Join prisms with the same footprint in adjacent layers (same bottom as the other's top)."""
    out: list[list] = []
    open_by_key: dict[tuple, int] = {}  # (footprint, top z) -> index in out
    for ring, z0, z1 in sorted(prisms, key=lambda p: p[1]):
        key = _footprint_key(ring)
        idx = open_by_key.pop((key, round(z0 / 1e-9)), None)
        if idx is not None:
            out[idx][2] = z1
        else:
            idx = len(out)
            out.append([ring, z0, z1])
        open_by_key[(key, round(z1 / 1e-9))] = idx
    return [tuple(p) for p in out]


def _prism(ring: np.ndarray, z0: float, z1: float) -> trimesh.Trimesh:
    points = np.vstack(
        (np.column_stack((ring, np.full(len(ring), z0))), np.column_stack((ring, np.full(len(ring), z1))))
    )
    return _hull(points)


def _hull(points: np.ndarray) -> trimesh.Trimesh:
    """Convex hull as a closed, outward-facing triangle mesh (manifold3d's hull is always a valid manifold)."""
    out = manifold3d.Manifold.hull_points(np.ascontiguousarray(points, dtype=np.float64)).to_mesh64()
    vertices = np.asarray(out.vert_properties, dtype=np.float64).reshape(-1, 3)
    faces = np.asarray(out.tri_verts, dtype=np.int64).reshape(-1, 3)
    return trimesh.Trimesh(vertices=vertices, faces=faces, process=False)  # empty for flat point sets


def _touching(a: trimesh.Trimesh, b: trimesh.Trimesh, gap: float = 1e-7) -> bool:
    (alo, ahi), (blo, bhi) = a.bounds, b.bounds
    return bool(np.all(alo <= bhi + gap) and np.all(blo <= ahi + gap))


def _merge_hulls(pieces: list[trimesh.Trimesh], solid: manifold3d.Manifold, cfg) -> list[trimesh.Trimesh]:
    """Replace touching pairs by their convex hull while the hull stays inside the solid."""
    pieces = _ordered(pieces)
    cache = []

    def grown() -> manifold3d.Manifold:
        """The part dilated by a cube of half-size hull_depth (built on first use: it costs up to a second)."""
        if not cache:
            cache.append(solid.minkowski_sum(manifold3d.Manifold.cube([2 * cfg.hull_depth] * 3, center=True)))
        return cache[0]

    changed = True
    while changed:
        changed = False
        i = 0
        while i < len(pieces):
            j = i + 1
            while j < len(pieces):
                a, b = pieces[i], pieces[j]
                if _touching(a, b):
                    hull = _hull(np.vstack((a.vertices, b.vertices)))
                    if 0 < len(hull.vertices) <= cfg.max_hull_vertices and _inside(hull, a, b, solid, grown, cfg):
                        pieces[i] = hull
                        del pieces[j]
                        changed = True
                        j = i + 1
                        continue
                j += 1
            i += 1
    return pieces


def _inside(hull, a, b, solid, grown, cfg) -> bool:
    """The hull of pieces a and b lies inside the part, up to cfg.hull_slack in volume and cfg.hull_depth."""
    if hull.volume <= max(a.volume, b.volume) + cfg.hull_slack:  # one contains the other
        return True
    outside = _to_manifold(hull) - solid
    if outside.is_empty():
        return True
    if outside.volume() > cfg.hull_slack:
        return False
    return (outside - grown()).is_empty()  # the sliver lies within hull_depth of the part


def _ordered(pieces: list[trimesh.Trimesh]) -> list[trimesh.Trimesh]:
    """Sort by bottom height, then angle of the centroid about z, then distance from the axis."""

    def key(p):
        c = p.centroid
        return (
            round(p.bounds[0, 2] / 1e-7),
            round(math.atan2(c[1], c[0]) / 1e-6),
            round(math.hypot(c[0], c[1]) / 1e-7),
        )

    return sorted(pieces, key=key)
