"""Small helpers to write physics USD with ``pxr`` (shipped with Isaac Lab).

The robot and the parts are written by code rather than imported from URDF/MJCF: that route needs
no optional importer extra and works kit-less, on Newton and on PhysX alike.

Conventions: metres, kilograms, seconds; z up; quaternions passed as (x, y, z, w) like Isaac Lab 3.0.
Revolute limits are written in degrees because that is what ``UsdPhysics`` stores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pxr import Gf, Sdf, Usd, UsdGeom, UsdPhysics, UsdShade, Vt

Vec3 = Sequence[float]
QuatXYZW = Sequence[float]


def new_stage(path: str, default_prim: str) -> tuple[Usd.Stage, Usd.Prim]:
    """Create a z-up, metre/kilogram stage with an Xform default prim."""
    stage = Usd.Stage.CreateNew(path)
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    UsdPhysics.SetStageKilogramsPerUnit(stage, 1.0)
    root = UsdGeom.Xform.Define(stage, f"/{default_prim}").GetPrim()
    stage.SetDefaultPrim(root)
    return stage, root


def _quatf(q: QuatXYZW) -> Gf.Quatf:
    x, y, z, w = (float(v) for v in q)
    return Gf.Quatf(w, Gf.Vec3f(x, y, z))


def _quatd(q: QuatXYZW) -> Gf.Quatd:
    x, y, z, w = (float(v) for v in q)
    return Gf.Quatd(w, Gf.Vec3d(x, y, z))


def set_pose(prim: Usd.Prim, pos: Vec3 = (0, 0, 0), quat: QuatXYZW = (0, 0, 0, 1), scale: Vec3 | None = None):
    """Give an Xformable prim a translate / orient (/ scale) op stack."""
    xf = UsdGeom.Xformable(prim)
    xf.ClearXformOpOrder()
    xf.AddTranslateOp(UsdGeom.XformOp.PrecisionDouble).Set(Gf.Vec3d(*[float(v) for v in pos]))
    xf.AddOrientOp(UsdGeom.XformOp.PrecisionDouble).Set(_quatd(quat))
    if scale is not None:
        xf.AddScaleOp(UsdGeom.XformOp.PrecisionDouble).Set(Gf.Vec3d(*[float(v) for v in scale]))


def add_physics_material(
    stage: Usd.Stage, path: str, static_friction: float, dynamic_friction: float, restitution: float = 0.0
) -> UsdShade.Material:
    """A physics material (friction/restitution) to bind to collision shapes."""
    material = UsdShade.Material.Define(stage, path)
    api = UsdPhysics.MaterialAPI.Apply(material.GetPrim())
    api.CreateStaticFrictionAttr(float(static_friction))
    api.CreateDynamicFrictionAttr(float(dynamic_friction))
    api.CreateRestitutionAttr(float(restitution))
    return material


def _finish_shape(prim: Usd.Prim, collide: bool, material: UsdShade.Material | None, rgb: Vec3 | None,
                  approximation: str | None = None) -> Usd.Prim:
    """Make a defined shape a collider (bound to ``material``, a mesh with its collider ``approximation``) and give it
    a display colour; the tail every ``add_*`` shape shares."""
    if collide:
        UsdPhysics.CollisionAPI.Apply(prim)
        if approximation is not None:
            UsdPhysics.MeshCollisionAPI.Apply(prim).CreateApproximationAttr(approximation)
        if material is not None:
            UsdShade.MaterialBindingAPI.Apply(prim).Bind(material, UsdShade.Tokens.weakerThanDescendants, "physics")
    if rgb is not None:
        UsdGeom.Gprim(prim).CreateDisplayColorAttr(Vt.Vec3fArray([Gf.Vec3f(*[float(c) for c in rgb])]))
    return prim


def add_rigid_body(
    stage: Usd.Stage,
    path: str,
    pos: Vec3,
    quat: QuatXYZW,
    mass: float,
    com: Vec3 = (0.0, 0.0, 0.0),
    inertia: Vec3 | None = None,
    kinematic: bool = False,
) -> Usd.Prim:
    """An Xform with RigidBodyAPI and explicit mass properties.

    Args:
        inertia: Principal moments [kg m^2] about the centre of mass; computed by the engine when None.
    """
    prim = UsdGeom.Xform.Define(stage, path).GetPrim()
    set_pose(prim, pos, quat)
    body = UsdPhysics.RigidBodyAPI.Apply(prim)
    if kinematic:
        body.CreateKinematicEnabledAttr(True)
    mass_api = UsdPhysics.MassAPI.Apply(prim)
    mass_api.CreateMassAttr(float(mass))
    mass_api.CreateCenterOfMassAttr(Gf.Vec3f(*[float(v) for v in com]))
    if inertia is not None:
        mass_api.CreateDiagonalInertiaAttr(Gf.Vec3f(*[float(v) for v in inertia]))
        mass_api.CreatePrincipalAxesAttr(Gf.Quatf(1.0, 0.0, 0.0, 0.0))
    return prim


def add_box(
    stage: Usd.Stage,
    path: str,
    size: Vec3,
    pos: Vec3 = (0, 0, 0),
    quat: QuatXYZW = (0, 0, 0, 1),
    collide: bool = True,
    material: UsdShade.Material | None = None,
    color: Vec3 | None = None,
) -> Usd.Prim:
    """A box of edge lengths ``size`` [m] (a unit ``UsdGeom.Cube`` scaled), optionally a collider."""
    cube = UsdGeom.Cube.Define(stage, path)
    cube.CreateSizeAttr(1.0)
    cube.CreateExtentAttr([Gf.Vec3f(-0.5, -0.5, -0.5), Gf.Vec3f(0.5, 0.5, 0.5)])
    set_pose(cube.GetPrim(), pos, quat, scale=size)
    return _finish_shape(cube.GetPrim(), collide, material, color)


def add_capsule(
    stage: Usd.Stage,
    path: str,
    radius: float,
    length: float,
    axis: str,
    pos: Vec3 = (0, 0, 0),
    quat: QuatXYZW = (0, 0, 0, 1),
    collide: bool = True,
    material: UsdShade.Material | None = None,
    color: Vec3 | None = None,
) -> Usd.Prim:
    """A capsule of cylinder ``length`` [m] (without the caps) along local ``axis`` ("X", "Y" or "Z")."""
    capsule = UsdGeom.Capsule.Define(stage, path)
    capsule.CreateRadiusAttr(float(radius))
    capsule.CreateHeightAttr(float(length))
    capsule.CreateAxisAttr(axis)
    set_pose(capsule.GetPrim(), pos, quat)
    return _finish_shape(capsule.GetPrim(), collide, material, color)


def add_mesh(
    stage: Usd.Stage,
    path: str,
    vertices: np.ndarray,
    faces: np.ndarray,
    collide: bool = True,
    approximation: str = "none",
    material: UsdShade.Material | None = None,
    color: Vec3 | None = None,
) -> Usd.Prim:
    """A triangle mesh; ``approximation`` is UsdPhysics' collider approximation ("none" = triangles).

    Args:
        vertices: Array of shape (V, 3) [m].
        faces: Integer array of shape (F, 3).
    """
    mesh = UsdGeom.Mesh.Define(stage, path)
    mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(np.asarray(vertices, dtype=np.float32)))
    mesh.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(np.full(len(faces), 3, dtype=np.int32)))
    mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(np.asarray(faces, dtype=np.int32).reshape(-1)))
    mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
    lo, hi = np.asarray(vertices).min(0), np.asarray(vertices).max(0)
    mesh.CreateExtentAttr([Gf.Vec3f(*lo.tolist()), Gf.Vec3f(*hi.tolist())])
    return _finish_shape(mesh.GetPrim(), collide, material, color, approximation)


def add_joint(
    stage: Usd.Stage,
    path: str,
    kind: str,
    body0: str | None,
    body1: str,
    pos0: Vec3,
    quat0: QuatXYZW = (0, 0, 0, 1),
    pos1: Vec3 = (0, 0, 0),
    quat1: QuatXYZW = (0, 0, 0, 1),
    axis: str = "Z",
    limits: tuple[float, float] | None = None,
    drive: tuple[float, float, float] | None = None,
) -> Usd.Prim:
    """A fixed, revolute or prismatic joint between two bodies (body0 None = the world).

    Args:
        limits: (lower, upper) in rad (revolute) or m (prismatic).
        drive: (stiffness, damping, max_force) of a position drive; Isaac Lab's actuator cfg
            overrides these at run time, they only make the file usable on its own.
    """
    if kind == "fixed":
        joint = UsdPhysics.FixedJoint.Define(stage, path)
    elif kind == "revolute":
        joint = UsdPhysics.RevoluteJoint.Define(stage, path)
    elif kind == "prismatic":
        joint = UsdPhysics.PrismaticJoint.Define(stage, path)
    else:
        raise ValueError(f"joint kind must be fixed, revolute or prismatic, got {kind!r}")
    if body0 is not None:
        joint.CreateBody0Rel().SetTargets([Sdf.Path(body0)])
    joint.CreateBody1Rel().SetTargets([Sdf.Path(body1)])
    joint.CreateLocalPos0Attr(Gf.Vec3f(*[float(v) for v in pos0]))
    joint.CreateLocalRot0Attr(_quatf(quat0))
    joint.CreateLocalPos1Attr(Gf.Vec3f(*[float(v) for v in pos1]))
    joint.CreateLocalRot1Attr(_quatf(quat1))
    if kind in ("revolute", "prismatic"):
        joint.CreateAxisAttr(axis)
        if limits is not None:
            lo, hi = limits
            if kind == "revolute":  # UsdPhysics stores angles in degrees
                lo, hi = math.degrees(lo), math.degrees(hi)
            joint.CreateLowerLimitAttr(float(lo))
            joint.CreateUpperLimitAttr(float(hi))
        if drive is not None:
            stiffness, damping, max_force = drive
            if kind == "revolute":  # UsdPhysics angular drives are per degree
                stiffness, damping = stiffness * math.pi / 180.0, damping * math.pi / 180.0
            api = UsdPhysics.DriveAPI.Apply(joint.GetPrim(), "angular" if kind == "revolute" else "linear")
            api.CreateTypeAttr("force")
            api.CreateStiffnessAttr(float(stiffness))
            api.CreateDampingAttr(float(damping))
            api.CreateMaxForceAttr(float(max_force))
    return joint.GetPrim()


def box_inertia(mass: float, size: Vec3) -> tuple[float, float, float]:
    """Principal moments [kg m^2] of a solid box of edge lengths ``size`` [m]."""
    x, y, z = size
    return (mass * (y * y + z * z) / 12.0, mass * (x * x + z * z) / 12.0, mass * (x * x + y * y) / 12.0)
