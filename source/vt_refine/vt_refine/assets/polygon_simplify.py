"""One-sided simplification of a polygon's rings (step 2 of :mod:`.convex_decomposition`).

Each ring is simplified so that material is only ever removed, by at most a tolerance: runs of vertices that bulge
outwards are replaced by chords, runs that bulge into the material by the intersections of a subset of their own
edge lines (a circumscribed polygon of the hole). Which vertices or edges are kept is decided on a global grid of
edge directions (the grid size that keeps fewest wins), so the same bore simplifies identically in every layer.
Units: metres.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import shapely.geometry as sg
from shapely.geometry.polygon import orient

ANGLE_EPS = 1e-9  # |sin(turn)| below this is a straight vertex
_ROUND_OFF_BAND = 1e-9  # a simplified ring may add or keep this band's area along the boundary (boolean round-off) [m]
_STRAIGHT_TOL = 1e-8  # a vertex this close to its neighbours' chord is round-off of the section booleans [m]
_GRID_COUNTS = (4, 6, 8, 12, 16, 24, 32, 48, 64, 96)  # direction-grid sizes tried, coarsest first


def simplify_polygon(polygon: sg.Polygon, tol: float) -> sg.Polygon:
    """Simplify every ring of a polygon while only removing material, by at most ``tol`` (Hausdorff) [m].

    Falls back to half the tolerance, then to the polygon itself, when a simplification fails the checks
    (invalid polygon, material added, deviation above ``tol``).
    """
    polygon = orient(polygon, 1.0)  # exterior CCW, holes CW: material on the left of every ring
    for attempt in (tol, tol / 2):
        rings = [_simplify_ring(np.asarray(r.coords)[:-1], attempt) for r in (polygon.exterior, *polygon.interiors)]
        if any(len(r) < 3 for r in rings):
            continue
        candidate = sg.Polygon(rings[0], rings[1:])
        if not candidate.is_valid or candidate.area <= 0:
            continue
        slack = _ROUND_OFF_BAND * polygon.length
        added = candidate.difference(polygon).area
        lost_beyond_tol = polygon.difference(candidate.buffer(tol * 1.001, quad_segs=16)).area
        if added <= slack and lost_beyond_tol <= slack:
            return orient(candidate, 1.0)
    return polygon


def ring_turns(ring: np.ndarray) -> np.ndarray:
    """sin of the turn at every vertex of a closed ring (material on the left: > 0 convex, < 0 reflex)."""
    e_in = ring - np.roll(ring, 1, axis=0)
    e_out = np.roll(ring, -1, axis=0) - ring
    e_in /= np.linalg.norm(e_in, axis=1, keepdims=True)
    e_out /= np.linalg.norm(e_out, axis=1, keepdims=True)
    return e_in[:, 0] * e_out[:, 1] - e_in[:, 1] * e_out[:, 0]


def drop_straight(ring: np.ndarray) -> np.ndarray:
    """Remove duplicate vertices and vertices within _STRAIGHT_TOL of the line through their neighbours."""
    ring = ring[np.linalg.norm(ring - np.roll(ring, 1, axis=0), axis=1) > 1e-12]
    while len(ring) > 3:
        prev, nxt = np.roll(ring, 1, axis=0), np.roll(ring, -1, axis=0)
        chord = nxt - prev
        length = np.linalg.norm(chord, axis=1)
        offset = np.abs(chord[:, 0] * (ring - prev)[:, 1] - chord[:, 1] * (ring - prev)[:, 0]) / np.maximum(
            length, 1e-300
        )
        ahead = np.einsum("ij,ij->i", ring - prev, nxt - ring) > 0  # not a spike
        straight = (offset < _STRAIGHT_TOL) & ahead
        if not straight.any():
            break
        first = int(np.argmax(straight))  # one at a time: dropping one changes its neighbours' offsets
        ring = np.delete(ring, first, axis=0)
    return ring


def _runs(mask: np.ndarray) -> list[np.ndarray]:
    """Maximal cyclic runs of True in mask, as index arrays in ring order."""
    n = len(mask)
    if mask.all():
        return [np.arange(n)]
    start = int(np.argmin(mask))  # a False entry: no run wraps past it
    order = (np.arange(n) + start) % n
    runs, current = [], []
    for i in order:
        if mask[i]:
            current.append(i)
        elif current:
            runs.append(np.array(current))
            current = []
    if current:
        runs.append(np.array(current))
    return runs


def _directions(ring: np.ndarray) -> np.ndarray:
    """Absolute direction angle of edge i (from vertex i to i+1) [rad]."""
    e = np.roll(ring, -1, axis=0) - ring
    return np.arctan2(e[:, 1], e[:, 0])


def _line_intersection(p0, d0, p1, d1):
    cross = d0[0] * d1[1] - d0[1] * d1[0]
    if abs(cross) < 1e-15:
        return None
    t = ((p1[0] - p0[0]) * d1[1] - (p1[1] - p0[1]) * d1[0]) / cross
    return p0 + t * d0


def _point_polyline_distance(p: np.ndarray, chain: np.ndarray) -> float:
    a, b = chain[:-1], chain[1:]
    ab = b - a
    t = np.clip(np.einsum("ij,ij->i", p - a, ab) / np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-300), 0.0, 1.0)
    return float(np.min(np.linalg.norm(a + t[:, None] * ab - p, axis=1)))


def _simplify_ring(ring: np.ndarray, tol: float) -> np.ndarray:
    """One-sided simplification of a closed ring (material on the left): see the module docstring."""
    ring = drop_straight(np.asarray(ring, dtype=np.float64))
    if len(ring) <= 3:
        return ring
    ring = _tangent_pass(ring, tol)
    ring = _chord_pass(drop_straight(ring), tol)
    return drop_straight(ring)


def _grid_keep(angles: np.ndarray, count: int) -> np.ndarray:
    """keep[k] for k >= 1: angle k lies in another bin of a 2 pi / count grid than angle k - 1 (absolute grid,
    so the choice does not depend on where a ring starts)."""
    bins = np.floor(angles / (2 * math.pi / count))
    return bins[1:] != bins[:-1]


def _best_of_grids(candidates):
    """The selection of the grid size that keeps fewest items (the coarsest on a tie), or None.

    ``candidates(count)`` returns the refined kept positions for a grid of ``count`` bins, or None.
    """
    fewest = None
    for count in _GRID_COUNTS:
        kept = candidates(count)
        if kept is not None and (fewest is None or len(kept) < len(fewest)):
            fewest = kept
    return fewest


def _tangent_pass(ring: np.ndarray, tol: float) -> np.ndarray:
    """Replace runs of reflex vertices by the intersections of a subset of their edge lines.

    Kept edges: the first edge of each bin of an absolute direction grid, refined (longest edge in between)
    wherever a new vertex would lie more than ``tol`` from the old chain; the grid size keeping fewest wins.
    """
    n = len(ring)
    reflex = ring_turns(ring) < -ANGLE_EPS
    if not reflex.any():
        return ring
    theta = _directions(ring)
    lengths = np.linalg.norm(np.roll(ring, -1, axis=0) - ring, axis=1)
    new_vertex: dict[int, np.ndarray | None] = {}  # reflex vertex index -> replacement (None = dropped)
    for run in _runs(reflex):
        # edge (run[0]-1) enters the run, edge run[k] leaves vertex run[k]; a whole ring wraps around
        cyclic = len(run) == n
        edges = run.copy() if cyclic else np.concatenate(([(run[0] - 1) % n], run))
        angles = np.unwrap(theta[np.concatenate(([edges[-1]], edges))] if cyclic else theta[edges])

        def candidates(count, edges=edges, angles=angles, cyclic=cyclic):
            # the longest edge of each bin: its line hugs the chain best (a bore's facets, not buffer arcs)
            starts = (
                np.flatnonzero(_grid_keep(angles, count))
                if cyclic
                else np.flatnonzero(np.concatenate(([True], _grid_keep(angles, count))))
            )
            if len(starts) < (2 if cyclic else 1):
                return None
            m = len(edges)
            ends = np.append(starts[1:], starts[0] + m if cyclic else m)
            kept = [
                _first_long([lengths[edges[k % m]] for k in range(a, b)]) + a for a, b in zip(starts, ends, strict=True)
            ]
            if cyclic:
                kept.append(kept[0] + m)
            else:  # the edges entering and leaving the run stay
                kept = sorted({0, *kept, m - 1})
            return _refine(
                kept,
                lambda a, b: _tangent_error(ring, edges, a, b) <= tol,
                lambda a, b: a + 1 + _middle_long([lengths[edges[k % m]] for k in range(a + 1, b)]),
            )

        kept = _best_of_grids(candidates)
        if kept is None:
            continue
        for a, b in itertools.pairwise(kept):
            ea, eb = edges[a % len(edges)], edges[b % len(edges)]
            span = [(ea + 1 + k) % n for k in range((eb - ea) % n or n)]
            if len(span) == 1:
                continue
            new_vertex[span[0]] = _line_intersection(
                ring[ea], ring[(ea + 1) % n] - ring[ea], ring[eb], ring[(eb + 1) % n] - ring[eb]
            )
            for i in span[1:]:
                new_vertex[i] = None
    out = []
    for i in range(n):
        if i not in new_vertex:
            out.append(ring[i])
        elif new_vertex[i] is not None:
            out.append(new_vertex[i])
    return np.asarray(out)


def _first_long(lengths: list[float]) -> int:
    """Index of the first edge at least half as long as the longest: a facet rather than a round-off or
    buffer-arc sliver (their lines hug the chain worst)."""
    lengths = np.asarray(lengths)
    return int(np.argmax(lengths >= 0.5 * lengths.max()))


def _middle_long(lengths: list[float]) -> int:
    """Index of the long edge (see _first_long) nearest the middle of the list."""
    lengths = np.asarray(lengths)
    candidates = np.flatnonzero(lengths >= 0.5 * lengths.max())
    return int(candidates[np.argmin(np.abs(candidates - (len(lengths) - 1) / 2))])


def _refine(kept: list[int], ok, split) -> list[int]:
    """Insert split(a, b) between consecutive kept positions until ok(a, b) holds for every pair."""
    out = [kept[0]]
    stack = list(itertools.pairwise(kept))[::-1]
    while stack:
        a, b = stack.pop()
        if b - a <= 1 or ok(a, b):
            out.append(b)
            continue
        m = split(a, b)
        stack.append((m, b))
        stack.append((a, m))
    return out


def _tangent_error(ring, edges, a, b) -> float:
    """Distance from the intersection of kept edges a < b (positions in ``edges``) to the chain it replaces."""
    n = len(ring)
    ea, eb = edges[a % len(edges)], edges[b % len(edges)]
    pa, da = ring[ea], ring[(ea + 1) % n] - ring[ea]
    pb, db = ring[eb], ring[(eb + 1) % n] - ring[eb]
    turn = math.atan2(da[0] * db[1] - da[1] * db[0], da @ db)
    if not -math.pi / 2 < turn < 0:  # intersection far away or on the material side
        return math.inf
    x = _line_intersection(pa, da, pb, db)
    if x is None:
        return math.inf
    span = [(ea + 1 + k) % n for k in range((eb - ea) % n or n)]
    return _point_polyline_distance(x, ring[[ea, *span, (eb + 1) % n]])


def _chord_pass(ring: np.ndarray, tol: float) -> np.ndarray:
    """Drop convex vertices: keep those starting a new bin of an absolute direction grid, refined
    (farthest vertex from the chord) wherever a dropped vertex lies more than ``tol`` outside its chord."""
    n = len(ring)
    convex = ring_turns(ring) > ANGLE_EPS
    if n <= 3 or not convex.any():
        return ring
    theta = _directions(ring)
    drop = np.zeros(n, dtype=bool)
    for run in _runs(convex):
        cyclic = len(run) == n
        # vertex run[k] sits between edges run[k]-1 and run[k]; the non-convex neighbours anchor a run
        angles = np.unwrap(theta[np.concatenate(([(run[0] - 1) % n], run))])
        verts = run if cyclic else np.concatenate(([(run[0] - 1) % n], run, [(run[-1] + 1) % n]))

        def candidates(count, verts=verts, angles=angles, cyclic=cyclic):
            keep = _grid_keep(angles, count)
            if cyclic:
                kept = list(np.flatnonzero(keep))
                if len(kept) < 3:
                    return None
                kept.append(kept[0] + len(verts))
            else:  # the run's non-convex neighbours stay
                kept = [0, *(np.flatnonzero(keep) + 1), len(verts) - 1]
            return _refine(
                kept,
                lambda a, b: _chord_error(ring, verts, a, b)[0] <= tol,
                lambda a, b: _chord_error(ring, verts, a, b)[1],
            )

        kept = _best_of_grids(candidates)
        if kept is None:
            continue
        kept_verts = {int(verts[k % len(verts)]) for k in kept}
        for k in range(len(verts)):
            if int(verts[k]) not in kept_verts and convex[verts[k]]:
                drop[verts[k]] = True
    if n - drop.sum() < 3:
        return ring
    return ring[~drop]


def _chord_error(ring, verts, a, b) -> tuple[float, int]:
    """(worst deviation, position of the worst vertex) of the vertices between kept positions a < b;
    a vertex left of (inside) the chord counts as infinitely bad."""
    m = len(verts)
    p, q = ring[verts[a % m]], ring[verts[b % m]]
    between = [verts[k % m] for k in range(a + 1, b)]
    pq = q - p
    length = float(np.linalg.norm(pq))
    if length < 1e-15:
        return math.inf, (a + b) // 2
    pts = ring[between] - p
    side = (pq[0] * pts[:, 1] - pq[1] * pts[:, 0]) / length  # > 0: left of the chord, inside the material
    err = np.where(side > 1e-12, math.inf, -side)
    worst = int(np.argmax(np.where(np.isinf(err), 1e300 + side, err)))
    return float(err.max()), a + 1 + worst
