"""USD files of the assembly parts (plug and socket), written by code and cached.

Each part is one rigid body whose collider is the part's triangle mesh: Newton's collision pipeline
handles triangle meshes on CPU (a real hole, unlike MuJoCo's convex-hull treatment), and PhysX uses
the same file with an SDF or convex-decomposition approximation selected by ``collision_approximation``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .parts import AssemblyGeometry, make_assembly

PARTS_USD_VERSION = 3
"""Bump when the written part files change, so cached files are regenerated."""

PART_COLORS = {"plug": (0.20, 0.45, 0.85), "socket": (0.80, 0.75, 0.70)}


def write_part_usd(
    path: str | Path,
    vertices: np.ndarray,
    faces: np.ndarray,
    mass: float,
    color: tuple[float, float, float],
    collision_approximation: str = "none",
    friction: float = 0.5,
) -> None:
    """Write one rigid part: an Xform body ``/part`` with a mesh collider ``/part/mesh``.

    Args:
        vertices: Array of shape (V, 3) in the part frame [m].
        faces: Integer array of shape (F, 3).
        mass: Part mass [kg]; the engine derives the inertia from the mesh.
        collision_approximation: UsdPhysics mesh approximation ("none" = triangle mesh,
            "convexDecomposition", "sdf" for GPU PhysX).
    """
    from . import usd_builder as ub
    from .contact import apply_contact_params

    stage, root = ub.new_stage(str(path), "part")
    from pxr import UsdPhysics

    UsdPhysics.RigidBodyAPI.Apply(root)
    mass_api = UsdPhysics.MassAPI.Apply(root)
    mass_api.CreateMassAttr(float(mass))
    material = ub.add_physics_material(stage, "/part/material", friction, friction)
    mesh = ub.add_mesh(stage, "/part/mesh", vertices, faces, collide=True, approximation=collision_approximation,
                       material=material, color=color)
    apply_contact_params(mesh)
    stage.GetRootLayer().Save()


def assembly_usd_paths(
    geometry: AssemblyGeometry, collision_approximation: str = "none"
) -> tuple[Path, Path]:
    """Cached USD files (plug, socket) for an assembly geometry."""
    from .cache import cached_build

    def build(out: Path) -> None:
        for role, mesh, mass in (("plug", geometry.plug, geometry.plug_mass), ("socket", geometry.socket, geometry.socket_mass)):
            write_part_usd(out / f"{role}.usda", mesh.vertices, mesh.faces, mass, PART_COLORS[role],
                           collision_approximation)

    params = {
        "usd_version": PARTS_USD_VERSION,
        "asset_id": geometry.spec.asset_id,
        "clearance": round(float(geometry.clearance), 9),
        "approximation": collision_approximation,
        # content hash: a user-supplied real mesh must not collide with the procedural one in the cache
        "mesh_digest": _mesh_digest(geometry),
    }
    folder = cached_build("assembly_usd", params, build, ["plug.usda", "socket.usda"])
    return folder / "plug.usda", folder / "socket.usda"


def procedural_assembly_usd_paths(key: str, clearance: float = 0.001) -> tuple[Path, Path]:
    """USD files of one of the five procedural assemblies (by id, name or task name)."""
    return assembly_usd_paths(make_assembly(key, clearance=clearance))


def _mesh_digest(geometry: AssemblyGeometry) -> str:
    import hashlib

    h = hashlib.sha256()
    for mesh in (geometry.plug, geometry.socket):
        h.update(np.ascontiguousarray(mesh.vertices, dtype=np.float64).tobytes())
        h.update(np.ascontiguousarray(mesh.faces, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]
