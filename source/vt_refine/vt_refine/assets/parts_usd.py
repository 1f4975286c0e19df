"""USD files of the assembly parts (plug and socket), written by code and cached.

Each part is one rigid body ``/part``. Its full triangle mesh ``/part/mesh`` is always there (the tactile
sensor queries the first Mesh under the part); what collides depends on ``collision_approximation``:

* ``"convex_pieces"`` (default): ``/part/mesh`` is visual only, and the colliders are convex pieces under
  ``/part/collision`` (purpose ``guide``, so not rendered), each a ``convexHull`` mesh collider. Newton's CPU
  pipeline handles convex shapes far better than triangle meshes (gripper pads no longer sink into the part)
  and faster. The pieces come from :func:`~vt_refine.assets.convex_decomposition.decompose_layered` where the
  part is a stack of z-prisms (every procedural part: bores, slots and keys reproduced to within 9 % of the
  clearance, material removed only), else from CoACD (any watertight mesh, e.g. a real part with tapers or
  fillets); :func:`collision_pieces` says which. Each piece gets a contact gap below half the clearance
  (see ``PIECE_CONTACT_GAP_FRACTION``).
* ``"none"``: ``/part/mesh`` itself is a triangle-mesh collider (Newton on GPU).
* any other UsdPhysics approximation (``"sdf"``, ``"convexDecomposition"``, ...): ``/part/mesh`` is the
  collider with that approximation (PhysX).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .part_designs import make_assembly
from .parts import AssemblyGeometry

PARTS_USD_VERSION = 6
"""Bump when the written part files change, so cached files are regenerated."""

CONVEX_PIECES = "convex_pieces"
"""``collision_approximation`` that collides through the layered convex decomposition."""

DEFAULT_COLLISION_APPROXIMATION = CONVEX_PIECES

PIECE_CONTACT_GAP_FRACTION = 0.4
"""Contact gap of each convex piece as a fraction of the fit clearance (``newton:contactGap``). Newton
speculates contacts between shapes closer than the sum of their gaps; with the scene's 5 mm default,
a plug in a bore is within reach of all ~32 bore pieces and the contacts (over 400 per world) overflow
MJWarp's buffer, which drops some and lets the plug fall through the socket. Two pieces' gaps
(0.8 x clearance) stay below the clearance, so a centred plug makes none."""

LAYERED_SIMPLIFY_FRACTION = 0.09
"""Most material the layered decomposition's section simplification removes, as a fraction of the clearance
(0.3 mm at the collar's 3 mm play: its 43 mm bore takes 43 pieces instead of 68 at 0.09 mm)."""

COACD_THRESHOLD = 0.02
"""CoACD's concavity threshold for parts the layered decomposition cannot take: at its default 0.05 the hulls
of the bayonet socket bridge its 25.5 mm bore (12 mm^3 of the assembled plug inside them); at 0.02 none does."""

PART_COLORS = {"plug": (0.20, 0.45, 0.85), "socket": (0.80, 0.75, 0.70)}


def write_part_usd(
    path: str | Path,
    vertices: np.ndarray,
    faces: np.ndarray,
    mass: float,
    color: tuple[float, float, float],
    collision_approximation: str = DEFAULT_COLLISION_APPROXIMATION,
    friction: float = 0.5,
    pieces: list | None = None,
    piece_contact_gap: float | None = None,
) -> None:
    """Write one rigid part: an Xform body ``/part`` with its mesh ``/part/mesh`` and its colliders.

    Args:
        path: USD file to write.
        vertices: Array of shape (V, 3) in the part frame [m].
        faces: Integer array of shape (F, 3).
        mass: Part mass [kg]; the engine derives the inertia from the colliders.
        color: Display colour (r, g, b) in [0, 1].
        collision_approximation: ``"convex_pieces"`` (convex colliders under ``/part/collision``), ``"none"``
            (triangle-mesh collider) or a UsdPhysics mesh approximation of ``/part/mesh`` ("sdf",
            "convexDecomposition", ... for PhysX); see the module docstring.
        friction: Static and dynamic friction of the part's physics material.
        pieces: Convex pieces (trimesh meshes, part frame [m]) for ``"convex_pieces"``; computed with
            :func:`collision_pieces` when None.
        piece_contact_gap: ``newton:contactGap`` of every piece [m] (see ``PIECE_CONTACT_GAP_FRACTION``);
            None leaves the scene's default.
    """
    from pxr import Sdf, UsdGeom, UsdPhysics

    from . import usd_builder as ub
    from .contact import apply_contact_params

    convex = collision_approximation == CONVEX_PIECES
    if convex and pieces is None:
        import trimesh

        pieces, _ = collision_pieces(trimesh.Trimesh(vertices=vertices, faces=faces, process=False))
    stage, root = ub.new_stage(str(path), "part")
    UsdPhysics.RigidBodyAPI.Apply(root)
    mass_api = UsdPhysics.MassAPI.Apply(root)
    mass_api.CreateMassAttr(float(mass))
    material = ub.add_physics_material(stage, "/part/material", friction, friction)
    # first Mesh under the part: the tactile sensor's SDF source, so it stays first and named "mesh"
    mesh = ub.add_mesh(
        stage,
        "/part/mesh",
        vertices,
        faces,
        collide=not convex,
        approximation=collision_approximation,
        material=material,
        color=color,
    )
    if not convex:
        apply_contact_params(mesh)
    else:
        group = UsdGeom.Xform.Define(stage, "/part/collision")
        UsdGeom.Imageable(group).CreatePurposeAttr(UsdGeom.Tokens.guide)  # colliders are not drawn
        for i, piece in enumerate(pieces):
            prim = ub.add_mesh(
                stage,
                f"/part/collision/piece_{i:03d}",
                piece.vertices,
                piece.faces,
                collide=True,
                approximation="convexHull",
                material=material,
                color=color,
            )
            UsdGeom.Imageable(prim).CreatePurposeAttr(UsdGeom.Tokens.guide)
            apply_contact_params(prim)
            if piece_contact_gap is not None:
                prim.CreateAttribute("newton:contactGap", Sdf.ValueTypeNames.Float).Set(float(piece_contact_gap))
    stage.GetRootLayer().Save()


def assembly_usd_paths(
    geometry: AssemblyGeometry, collision_approximation: str = DEFAULT_COLLISION_APPROXIMATION
) -> tuple[Path, Path]:
    """Cached USD files (plug, socket) for an assembly geometry (convex pieces are computed once per mesh and
    clearance, then read from the cache)."""
    from .cache import cached_build

    clearance = float(geometry.clearance)
    piece_gap = PIECE_CONTACT_GAP_FRACTION * clearance

    def build(out: Path) -> None:
        for role, mesh, mass in (
            ("plug", geometry.plug, geometry.plug_mass),
            ("socket", geometry.socket, geometry.socket_mass),
        ):
            pieces = None
            if collision_approximation == CONVEX_PIECES:
                pieces, method = collision_pieces(mesh, clearance)
                # once per mesh (then cached): say which method made the colliders
                print(f"[vt_refine] {geometry.spec.name} {role}: {len(pieces)} convex collision pieces ({method})",
                      file=sys.stderr, flush=True)
            write_part_usd(out / f"{role}.usda", mesh.vertices, mesh.faces, mass, PART_COLORS[role],
                           collision_approximation, pieces=pieces, piece_contact_gap=piece_gap)

    params = {
        "usd_version": PARTS_USD_VERSION,
        "asset_id": geometry.spec.asset_id,
        "clearance": round(float(geometry.clearance), 9),
        "approximation": collision_approximation,
        "piece_contact_gap": round(piece_gap, 9),
        # content hash: a user-supplied real mesh must not collide with the procedural one in the cache
        "mesh_digest": _mesh_digest(geometry),
    }
    folder = cached_build("assembly_usd", params, build, ["plug.usda", "socket.usda"])
    return folder / "plug.usda", folder / "socket.usda"


def collision_pieces(mesh, clearance: float = 0.001) -> tuple[list, str]:
    """Convex pieces of a watertight part [m] and the method that made them ("layered, ..." or "CoACD, ...").

    The layered decomposition is exact up to ``LAYERED_SIMPLIFY_FRACTION`` of the clearance but only takes stacks
    of z-prisms; anything else (or a part needing more than its piece limit) goes to CoACD.
    """
    import dataclasses

    import trimesh

    from .convex_decomposition import DEFAULT_CFG, ConvexDecompositionError, decompose_layered

    cfg = dataclasses.replace(DEFAULT_CFG, simplify_tol=LAYERED_SIMPLIFY_FRACTION * clearance)
    try:
        pieces = decompose_layered(mesh, cfg)
        return pieces, f"layered, within {cfg.simplify_tol * 1000:.2f} mm"
    except ConvexDecompositionError as err:
        layered_error = str(err)
    import coacd

    coacd.set_log_level("error")
    parts = coacd.run_coacd(coacd.Mesh(np.asarray(mesh.vertices), np.asarray(mesh.faces)), threshold=COACD_THRESHOLD,
                            decimate=True, max_ch_vertex=64, seed=0)  # Newton keeps at most 64 hull vertices
    pieces = [trimesh.Trimesh(vertices=v, faces=f, process=True) for v, f in parts]
    pieces = [p.convex_hull for p in pieces if len(p.faces) >= 4]
    # how far the hulls reach outside the part: sampled on their surfaces
    samples = np.vstack([trimesh.sample.sample_surface(p, 200, seed=0)[0] for p in pieces])
    outside = float(max(0.0, (-trimesh.proximity.signed_distance(mesh, samples)).max()))
    return pieces, (f"CoACD threshold {COACD_THRESHOLD}, up to {outside * 1000:.2f} mm outside the part; the layered "
                    f"method refused it: {layered_error}")


def procedural_assembly_usd_paths(
    key: str, clearance: float | None = None, collision_approximation: str = DEFAULT_COLLISION_APPROXIMATION
) -> tuple[Path, Path]:
    """USD files of one of the five procedural assemblies (by id, name or task name)."""
    return assembly_usd_paths(make_assembly(key, clearance=clearance), collision_approximation)


def _mesh_digest(geometry: AssemblyGeometry) -> str:
    import hashlib

    h = hashlib.sha256()
    for mesh in (geometry.plug, geometry.socket):
        h.update(np.ascontiguousarray(mesh.vertices, dtype=np.float64).tobytes())
        h.update(np.ascontiguousarray(mesh.faces, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]
