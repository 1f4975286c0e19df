"""Solid modelling for the procedural parts: revolve, extrude, boxes and boolean operations (manifold3d through
trimesh), and the chamfer cutters the designs share. Lengths in metres.
"""

from __future__ import annotations

import functools
import math
import operator

import manifold3d
import numpy as np
import shapely.geometry as sg
import trimesh

from .parts import MM, ROUND_SECTIONS

_TRIANGULATION_ENGINE = "manifold"  # manifold3d triangulates polygons with holes; earcut/triangle may be absent


def outward(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Flip a closed mesh whose faces point inwards (negative volume)."""
    if mesh.volume < 0:
        mesh.invert()
    return mesh


def revolve(profile_rz: list[tuple[float, float]]) -> trimesh.Trimesh:
    """Solid of revolution about z of a (radius, z) profile that starts and ends on the axis, or is closed."""
    mesh = trimesh.creation.revolve(np.asarray(profile_rz, dtype=float), sections=ROUND_SECTIONS)
    return outward(mesh)


def circle(radius: float) -> np.ndarray:
    """Polygon ring of ROUND_SECTIONS points at angles 2 pi k / n, matching `revolve`: array of shape (n, 2)."""
    theta = np.arange(ROUND_SECTIONS) * (2.0 * np.pi / ROUND_SECTIONS)
    return radius * np.column_stack((np.cos(theta), np.sin(theta)))


def rounded_rect(size_x: float, size_y: float, corner_radius: float) -> sg.Polygon:
    """Axis-aligned rectangle centred on the origin with rounded corners."""
    inner = sg.box(
        -size_x / 2 + corner_radius, -size_y / 2 + corner_radius, size_x / 2 - corner_radius, size_y / 2 - corner_radius
    )
    return inner.buffer(corner_radius, quad_segs=8)


def extrude(polygon: sg.Polygon, z0: float, z1: float) -> trimesh.Trimesh:
    """Prism of a shapely polygon (holes allowed) between heights z0 < z1."""
    mesh = trimesh.creation.extrude_polygon(polygon, z1 - z0, engine=_TRIANGULATION_ENGINE)
    mesh.apply_translation((0.0, 0.0, z0))
    return outward(mesh)


def box(x0: float, x1: float, y0: float, y1: float, z0: float, z1: float) -> trimesh.Trimesh:
    """Axis-aligned box between the given bounds."""
    return trimesh.creation.box(bounds=[[x0, y0, z0], [x1, y1, z1]])


def to_manifold(mesh: trimesh.Trimesh) -> manifold3d.Manifold:
    solid = manifold3d.Manifold(
        manifold3d.Mesh64(
            vert_properties=np.array(mesh.vertices, dtype=np.float64, order="C"),
            tri_verts=np.array(mesh.faces, dtype=np.uint64, order="C"),
        )
    )
    if solid.status() != manifold3d.Error.NoError:
        raise RuntimeError(f"boolean operand is not a closed manifold ({solid.status()}); generator bug.")
    return solid


def from_manifold(solid: manifold3d.Manifold) -> trimesh.Trimesh:
    out = solid.to_mesh64()
    vertices = np.array(out.vert_properties, dtype=np.float64)[:, :3]
    return trimesh.Trimesh(vertices=vertices, faces=np.array(out.tri_verts, dtype=np.int64), process=False)


# Booleans go to manifold3d directly in float64: trimesh's manifold engine rounds vertices to float32,
# which leaves coincident vertices and zero-area sliver triangles in the result.
def union(*meshes: trimesh.Trimesh) -> trimesh.Trimesh:
    return from_manifold(functools.reduce(operator.add, map(to_manifold, meshes)))


def difference(base: trimesh.Trimesh, *cutters: trimesh.Trimesh) -> trimesh.Trimesh:
    return from_manifold(to_manifold(base) - functools.reduce(operator.add, map(to_manifold, cutters)))


def intersection(*meshes: trimesh.Trimesh) -> trimesh.Trimesh:
    return from_manifold(functools.reduce(operator.xor, map(to_manifold, meshes)))


def tip_chamfer_solid(radius_at_tip: float, top: float) -> trimesh.Trimesh:
    """A 45 deg cone-topped-by-cylinder that, intersected with a male part, chamfers its bottom edge.

    The cone passes through (radius_at_tip, z=0) and starts 1 mm below z=0 so no face is coplanar with
    the part's bottom (coplanar faces make booleans fragile).
    """
    below = 1.0 * MM
    r_big = radius_at_tip + 40.0 * MM
    return revolve(
        [
            (0.0, -below),
            (radius_at_tip - below, -below),
            (r_big, r_big - radius_at_tip),
            (r_big, top + below),
            (0.0, top + below),
        ]
    )


def bore_chamfer_cutter(bore_radius: float, chamfer: float) -> trimesh.Trimesh:
    """A 45 deg cone that, subtracted from a female part, chamfers its bore's bottom edge."""
    below = 1.0 * MM
    return revolve(
        [
            (0.0, -below),
            (bore_radius + chamfer + below, -below),
            (bore_radius - below, chamfer + below),
            (0.0, chamfer + below),
        ]
    )


def annular_sector(r_in: float, r_out: float, angle0: float, angle1: float, step_deg: float = 1.0) -> sg.Polygon:
    """Planar ring sector between radii r_in < r_out and angles angle0 < angle1 [rad]."""
    n = max(2, math.ceil(math.degrees(angle1 - angle0) / step_deg) + 1)
    theta = np.linspace(angle0, angle1, n)
    inner = r_in * np.column_stack((np.cos(theta), np.sin(theta)))
    outer = r_out * np.column_stack((np.cos(theta[::-1]), np.sin(theta[::-1])))
    return sg.Polygon(np.vstack((inner, outer)))


def top_chamfer_solid(radius_at_top: float, top: float) -> trimesh.Trimesh:
    """A 45 deg cone-below-cylinder that, intersected with a male part standing on z = 0, chamfers its top edge
    (the cone passes through (radius_at_top, top))."""
    below = 1.0 * MM
    r_big = radius_at_top + 60.0 * MM
    return revolve(
        [
            (0.0, -below),
            (r_big, -below),
            (r_big, top - (r_big - radius_at_top)),
            (radius_at_top - below, top + below),
            (0.0, top + below),
        ]
    )
