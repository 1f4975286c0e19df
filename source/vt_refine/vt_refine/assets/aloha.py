"""The ALOHA-style twin: two ViperX-300 S arms facing each other, each with a parallel gripper whose
two fingers carry a FlexiTac-sized pad.

This module is the one source of truth for the robot: kinematics (joint origins, axes, limits),
collision shapes, masses, base placement, joint order. The USD file, the Isaac Lab articulation cfg
and the batched forward kinematics used by the scripted expert are all derived from it.

Frames (per arm): the ViperX kinematic chain of the public robot description; x points forward along
the arm at zero joint angles, z up. The gripper frame's x is the approach direction, y the closing axis.
The pad frame is aligned with its finger: x along the finger, y the pad normal (thin, 3 mm), z across.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ARM_SIDES = ("left", "right")
"""Arm prefixes; the left arm holds the socket, the right arm the plug."""

ARM_JOINTS = ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate")
FINGER_JOINTS = ("left_finger", "right_finger")

ALOHA_JOINT_NAMES: tuple[str, ...] = tuple(f"{s}_{j}" for s in ARM_SIDES for j in ARM_JOINTS + FINGER_JOINTS)
"""The 16 joints in action/observation order: left/{6 arm, 2 fingers}, then right/{same}."""

PAD_BODY_NAMES: tuple[str, ...] = tuple(f"{s}_{f}_pad" for s in ARM_SIDES for f in FINGER_JOINTS)
"""The four tactile pads, in sensor order: left arm (left, right finger), right arm (left, right finger)."""

PAD_SIZE = (0.06665, 0.003, 0.026)
"""FlexiTac pad box in the pad frame [m]: 66.65 mm along the finger, 3 mm thick (normal), 26 mm across."""

FINGER_STROKE = 0.042
"""Travel of each finger from the closed position [m]; the pads' faces meet at 0."""

PAD_COLLIDER_DEPTH = 0.012
"""Thickness of the pad's collision box [m], measured from its contact face back into the finger."""

PAD_FRICTION = 2.0
"""Friction coefficient of the pads' silicone skin."""

"""Travel of each finger from the closed position [m]; the pads' faces meet at 0."""


@dataclass(frozen=True)
class JointSpec:
    """One joint of an arm: parent -> child transform at q = 0, then motion about/along ``axis``."""

    name: str
    kind: str  # "revolute" | "prismatic" | "fixed"
    parent: str
    child: str
    origin_xyz: tuple[float, float, float]
    origin_rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)
    axis: str = "Z"
    limits: tuple[float, float] | None = None  # rad or m
    effort_limit: float = 0.0  # N m or N


@dataclass(frozen=True)
class ShapeSpec:
    """A collision primitive in a link frame: a box (size) or a capsule (radius, length, axis)."""

    kind: str  # "box" | "capsule"
    pos: tuple[float, float, float]
    size: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radius: float = 0.0
    length: float = 0.0
    axis: str = "X"
    quat: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)


@dataclass(frozen=True)
class LinkSpec:
    name: str
    mass: float  # kg
    shapes: tuple[ShapeSpec, ...] = field(default_factory=tuple)
    color: tuple[float, float, float] = (0.15, 0.15, 0.15)


# ViperX-300 S chain (public robot description; see the design facts file). Fingers and pads are the
# ALOHA gripper: the fixed gripper -> fingers offset is 0.042825 + 0.025875 m.
_FINGERS_OFFSET_X = 0.042825 + 0.025875
_PAD_CENTER_X = 0.10
_PAD_CENTER_Y = 0.5 * PAD_SIZE[1]  # facts give 1.2 mm; 1.5 mm (half the pad) lets the closed pads just touch
_FINGER_LENGTH = _PAD_CENTER_X + 0.5 * PAD_SIZE[0]  # finger ends where the pad ends
_FINGER_THICKNESS = 0.008

ARM_JOINT_SPECS: tuple[JointSpec, ...] = (
    JointSpec("waist", "revolute", "base_link", "shoulder_link", (0.0, 0.0, 0.079), axis="Z",
              limits=(-math.pi, math.pi), effort_limit=10.0),
    JointSpec("shoulder", "revolute", "shoulder_link", "upper_arm_link", (0.0, 0.0, 0.04805), axis="Y",
              limits=(-1.850, 1.257), effort_limit=20.0),
    JointSpec("elbow", "revolute", "upper_arm_link", "upper_forearm_link", (0.05955, 0.0, 0.3), axis="Y",
              limits=(-1.763, 1.606), effort_limit=15.0),
    JointSpec("forearm_roll", "revolute", "upper_forearm_link", "lower_forearm_link", (0.2, 0.0, 0.0), axis="X",
              limits=(-math.pi, math.pi), effort_limit=2.0),
    JointSpec("wrist_angle", "revolute", "lower_forearm_link", "wrist_link", (0.1, 0.0, 0.0), (0.0, 0.05, 0.0),
              axis="Y", limits=(-1.868, 2.234), effort_limit=5.0),
    JointSpec("wrist_rotate", "revolute", "wrist_link", "gripper_link", (0.069744, 0.0, 0.0), axis="X",
              limits=(-math.pi, math.pi), effort_limit=1.0),
    JointSpec("left_finger", "prismatic", "gripper_link", "left_finger_link", (_FINGERS_OFFSET_X, 0.0, 0.0),
              axis="Y", limits=(0.0, FINGER_STROKE), effort_limit=5.0),
    JointSpec("right_finger", "prismatic", "gripper_link", "right_finger_link", (_FINGERS_OFFSET_X, 0.0, 0.0),
              axis="Y", limits=(-FINGER_STROKE, 0.0), effort_limit=5.0),
    JointSpec("left_finger_pad", "fixed", "left_finger_link", "left_finger_pad", (_PAD_CENTER_X, _PAD_CENTER_Y, 0.0)),
    JointSpec("right_finger_pad", "fixed", "right_finger_link", "right_finger_pad",
              (_PAD_CENTER_X, -_PAD_CENTER_Y, 0.0)),
)


def _upper_arm_capsule() -> ShapeSpec:
    # capsule along the shoulder -> elbow segment, which leans forward by atan(0.05955 / 0.3)
    tilt = math.atan2(0.05955, 0.3)
    length = math.hypot(0.05955, 0.3)
    quat = (0.0, math.sin(0.5 * tilt), 0.0, math.cos(0.5 * tilt))  # rotate z towards +x about y
    return ShapeSpec("capsule", (0.5 * 0.05955, 0.0, 0.15), radius=0.03, length=length - 0.06, axis="Z", quat=quat)


ARM_LINK_SPECS: tuple[LinkSpec, ...] = (
    LinkSpec("base_link", 1.5, (ShapeSpec("box", (0.0, 0.0, 0.035), size=(0.10, 0.10, 0.07)),)),
    LinkSpec("shoulder_link", 0.8, (ShapeSpec("box", (0.0, 0.0, 0.025), size=(0.07, 0.09, 0.05)),)),
    LinkSpec("upper_arm_link", 0.8, (_upper_arm_capsule(),)),
    LinkSpec("upper_forearm_link", 0.45, (ShapeSpec("capsule", (0.1, 0.0, 0.0), radius=0.028, length=0.13),)),
    LinkSpec("lower_forearm_link", 0.3, (ShapeSpec("capsule", (0.05, 0.0, 0.0), radius=0.025, length=0.04),)),
    LinkSpec("wrist_link", 0.15, (ShapeSpec("box", (0.035, 0.0, 0.0), size=(0.05, 0.05, 0.045)),)),
    LinkSpec("gripper_link", 0.25, (ShapeSpec("box", (0.035, 0.0, 0.0), size=(0.05, 0.10, 0.04)),)),
    LinkSpec("left_finger_link", 0.03, (ShapeSpec("box", (0.5 * _FINGER_LENGTH, PAD_SIZE[1] + 0.5 * _FINGER_THICKNESS, 0.0),
                                                  size=(_FINGER_LENGTH, _FINGER_THICKNESS, PAD_SIZE[2])),)),
    LinkSpec("right_finger_link", 0.03, (ShapeSpec("box", (0.5 * _FINGER_LENGTH, -PAD_SIZE[1] - 0.5 * _FINGER_THICKNESS, 0.0),
                                                   size=(_FINGER_LENGTH, _FINGER_THICKNESS, PAD_SIZE[2])),)),
    # the pad collider keeps the pad's contact face but extends back into the finger: a 3 mm box pressed
    # ~2 mm into a triangle-mesh surface would otherwise be resolved through it
    LinkSpec("left_finger_pad", 0.005, (ShapeSpec("box", (0.0, 0.5 * PAD_COLLIDER_DEPTH - 0.5 * PAD_SIZE[1], 0.0),
                                                  size=(PAD_SIZE[0], PAD_COLLIDER_DEPTH, PAD_SIZE[2])),), color=(0.9, 0.5, 0.1)),
    LinkSpec("right_finger_pad", 0.005, (ShapeSpec("box", (0.0, -0.5 * PAD_COLLIDER_DEPTH + 0.5 * PAD_SIZE[1], 0.0),
                                                   size=(PAD_SIZE[0], PAD_COLLIDER_DEPTH, PAD_SIZE[2])),), color=(0.9, 0.5, 0.1)),
)

BASE_POSES: dict[str, tuple[tuple[float, float, float], float]] = {
    "left": ((-0.005, -0.525, 0.02), +0.5 * math.pi),
    "right": ((0.005, 0.525, 0.02), -0.5 * math.pi),
}
"""Arm base position [m] and yaw [rad] in the env frame (table top at z = 0)."""

HOME_JOINT_POS: dict[str, float] = {
    **{f"{s}_waist": 0.0 for s in ARM_SIDES},
    **{f"{s}_shoulder": -0.96 for s in ARM_SIDES},
    **{f"{s}_elbow": 1.16 for s in ARM_SIDES},
    **{f"{s}_forearm_roll": 0.0 for s in ARM_SIDES},
    **{f"{s}_wrist_angle": -0.3 for s in ARM_SIDES},
    **{f"{s}_wrist_rotate": 0.0 for s in ARM_SIDES},
    **{f"{s}_left_finger": 0.037 for s in ARM_SIDES},
    **{f"{s}_right_finger": -0.037 for s in ARM_SIDES},
}
"""Home pose [rad, m]: arms raised and folded towards the table centre, grippers open."""


def _per_actuated_joint(field: str) -> dict:
    """One field of every actuated joint's spec, keyed by the joint's name."""
    return {f"{side}_{spec.name}": getattr(spec, field) for side in ARM_SIDES for spec in ARM_JOINT_SPECS
            if spec.kind != "fixed"}


def joint_limits() -> dict[str, tuple[float, float]]:
    """Limits of the 16 actuated joints, keyed by name."""
    return _per_actuated_joint("limits")


def joint_to_action_map() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(scale, offset) per joint in action order: the tasks' action (joint limits mapped onto [-1, 1]) that holds
    joint positions q is scale * q + offset."""
    limits = joint_limits()
    lo = np.array([limits[n][0] for n in ALOHA_JOINT_NAMES], dtype=np.float64)
    hi = np.array([limits[n][1] for n in ALOHA_JOINT_NAMES], dtype=np.float64)
    scale = 2.0 / (hi - lo)
    return tuple(scale.tolist()), tuple((-1.0 - scale * lo).tolist())


def effort_limits() -> dict[str, float]:
    return _per_actuated_joint("effort_limit")


# --------------------------------------------------------------------------------------------------
# small rotation helpers (numpy, xyzw)
# --------------------------------------------------------------------------------------------------


def quat_from_rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Quaternion (x, y, z, w) of the fixed-axis roll-pitch-yaw rotation Rz(yaw) Ry(pitch) Rx(roll)."""
    cr, sr = math.cos(0.5 * roll), math.sin(0.5 * roll)
    cp, sp = math.cos(0.5 * pitch), math.sin(0.5 * pitch)
    cy, sy = math.cos(0.5 * yaw), math.sin(0.5 * yaw)
    return np.array([
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
        cr * cp * cy + sr * sp * sy,
    ])


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    x, y, z, w = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(m).as_quat()  # scipy is xyzw


def _pose(pos, quat) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3] = quat_to_matrix(np.asarray(quat, dtype=float))
    t[:3, 3] = pos
    return t


def link_poses_at_zero() -> dict[str, np.ndarray]:
    """World (env-frame) 4x4 poses of every link of both arms at zero joint positions."""
    poses: dict[str, np.ndarray] = {}
    for side in ARM_SIDES:
        pos, yaw = BASE_POSES[side]
        poses[f"{side}_base_link"] = _pose(pos, quat_from_rpy(0.0, 0.0, yaw))
        for spec in ARM_JOINT_SPECS:
            parent = poses[f"{side}_{spec.parent}"]
            poses[f"{side}_{spec.child}"] = parent @ _pose(spec.origin_xyz, quat_from_rpy(*spec.origin_rpy))
    return poses


# --------------------------------------------------------------------------------------------------
# USD
# --------------------------------------------------------------------------------------------------

ROBOT_USD_VERSION = 8
"""Bump when the written robot changes, so cached files are regenerated."""


def write_aloha_usd(path: str | os.PathLike) -> None:
    """Write the twin (both arms, one fixed-base articulation) as a USD file."""
    from . import usd_builder as ub
    from .contact import apply_contact_params

    path = str(path)
    stage, root = ub.new_stage(path, "aloha")
    from pxr import Sdf, UsdPhysics

    UsdPhysics.ArticulationRootAPI.Apply(root)
    link_mat = ub.add_physics_material(stage, "/aloha/materials/link", 0.5, 0.5)
    # silicone-skinned pads grip hard; MuJoCo's soft friction creeps, so a high coefficient keeps parts from sliding out
    pad_mat = ub.add_physics_material(stage, "/aloha/materials/pad", PAD_FRICTION, PAD_FRICTION)

    # a massless-looking frame body welded to the world is the articulation root for both arms
    ub.add_rigid_body(stage, "/aloha/frame", (0, 0, 0), (0, 0, 0, 1), mass=1.0, inertia=(0.01, 0.01, 0.01))
    ub.add_joint(stage, "/aloha/joints/world_to_frame", "fixed", None, "/aloha/frame", (0, 0, 0))

    poses = link_poses_at_zero()
    specs = {spec.name: spec for spec in ARM_LINK_SPECS}
    for side in ARM_SIDES:
        for link in ARM_LINK_SPECS:
            name = f"{side}_{link.name}"
            t = poses[name]
            inertia = _link_inertia(link)
            prim_path = f"/aloha/{name}"
            body = ub.add_rigid_body(stage, prim_path, t[:3, 3], matrix_to_quat(t[:3, :3]), link.mass, inertia=inertia)
            # MuJoCo-Warp gravity compensation (ignored by PhysX): the real arms' controller holds them up too
            body.CreateAttribute("mjc:gravcomp", Sdf.ValueTypeNames.Float).Set(1.0)
            material = pad_mat if link.name.endswith("_pad") else link_mat
            for k, shape in enumerate(link.shapes):
                shape_path = f"{prim_path}/collision_{k}"
                if shape.kind == "box":
                    shape_prim = ub.add_box(stage, shape_path, shape.size, shape.pos, shape.quat, material=material,
                                            color=link.color)
                else:
                    shape_prim = ub.add_capsule(stage, shape_path, shape.radius, shape.length, shape.axis, shape.pos,
                                                shape.quat, material=material, color=link.color)
                if "finger" in link.name:  # the grasping surfaces get the harder contact model
                    apply_contact_params(shape_prim)
        pos, yaw = BASE_POSES[side]
        ub.add_joint(stage, f"/aloha/joints/{side}_base", "fixed", "/aloha/frame", f"/aloha/{side}_base_link",
                     pos, quat_from_rpy(0.0, 0.0, yaw))
        for spec in ARM_JOINT_SPECS:
            drive = None
            if spec.kind != "fixed":
                drive = (400.0, 40.0, spec.effort_limit)
            ub.add_joint(
                stage, f"/aloha/joints/{side}_{spec.name}", spec.kind,
                f"/aloha/{side}_{spec.parent}", f"/aloha/{side}_{spec.child}",
                spec.origin_xyz, quat_from_rpy(*spec.origin_rpy), axis=spec.axis, limits=spec.limits, drive=drive,
            )
    del specs
    stage.GetRootLayer().Save()


def _link_inertia(link: LinkSpec) -> tuple[float, float, float]:
    # inertia of the link's bounding box of shapes: good enough for PD-driven links without gravity
    if not link.shapes:
        return (1e-4, 1e-4, 1e-4)
    s = link.shapes[0]
    size = s.size if s.kind == "box" else (
        (s.length + 2 * s.radius, 2 * s.radius, 2 * s.radius) if s.axis == "X" else (2 * s.radius, 2 * s.radius, s.length + 2 * s.radius)
    )
    from .usd_builder import box_inertia

    return box_inertia(link.mass, size)


def aloha_usd_path() -> Path:
    """Path of the generated robot USD, written into the asset cache on first use."""
    from .cache import cached_build

    folder = cached_build(
        "aloha_robot",
        {"usd_version": ROBOT_USD_VERSION},
        lambda out: write_aloha_usd(out / "aloha.usda"),
        ["aloha.usda"],
    )
    return folder / "aloha.usda"


def aloha_articulation_cfg(prim_path: str = "{ENV_REGEX_NS}/Robot", stiffness: float = 400.0, damping: float = 40.0,
                           gripper_stiffness: float | None = None, gripper_damping: float | None = None):
    """Isaac Lab articulation cfg of the twin: joint PD (implicit), home pose, effort limits from the spec.

    Args:
        stiffness: Arm joint PD stiffness [N m/rad].
        damping: Arm joint PD damping [N m s/rad].
        gripper_stiffness: Finger PD stiffness [N/m] (default: ``stiffness``).
        gripper_damping: Finger PD damping [N s/m] (default: ``damping``).
    """
    import isaaclab.sim as sim_utils
    from isaaclab.actuators import ImplicitActuatorCfg
    from isaaclab.assets import ArticulationCfg
    from isaaclab_newton.sim.schemas import NewtonArticulationCfg
    from isaaclab_physx.sim.schemas import PhysxArticulationCfg

    efforts = effort_limits()
    arm = [n for n in ALOHA_JOINT_NAMES if not n.endswith("_finger")]
    fingers = [n for n in ALOHA_JOINT_NAMES if n.endswith("_finger")]
    return ArticulationCfg(
        prim_path=prim_path,
        spawn=sim_utils.UsdFileCfg(
            usd_path=str(aloha_usd_path()),
            articulation_props=[
                NewtonArticulationCfg(self_collision_enabled=False),
                PhysxArticulationCfg(enabled_self_collisions=False, solver_position_iteration_count=16,
                                     solver_velocity_iteration_count=1),
            ],
        ),
        init_state=ArticulationCfg.InitialStateCfg(joint_pos=dict(HOME_JOINT_POS)),
        actuators={
            "arms": ImplicitActuatorCfg(
                joint_names_expr=arm, stiffness=stiffness, damping=damping,
                joint_effort_limit={n: efforts[n] for n in arm}, armature=0.01,
            ),
            "grippers": ImplicitActuatorCfg(
                joint_names_expr=fingers,
                stiffness=stiffness if gripper_stiffness is None else gripper_stiffness,
                damping=damping if gripper_damping is None else gripper_damping,
                # a heavier finger (reflected motor inertia) makes the squeeze contact stiffer in newtons per metre
                joint_effort_limit={n: efforts[n] for n in fingers}, armature=0.05,
            ),
        },
        soft_joint_pos_limit_factor=1.0,
    )
