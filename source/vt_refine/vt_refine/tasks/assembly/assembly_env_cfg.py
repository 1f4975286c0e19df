"""Base configuration of the bimanual assembly tasks on the ALOHA twin.

The scene holds the twin (both arms, one articulation), a table, the socket (held by the left arm)
and the plug (held by the right arm). Per-part tasks (``config/aloha``) only choose the assembly.

Control: 16 absolute joint-position targets in [-1, 1] (rescaled to the joint limits), physics at
120 Hz, policy at 15 Hz (decimation 8), 240 control steps per episode (30 decisions x 8 actions).
"""

from __future__ import annotations

import math
from dataclasses import MISSING

from isaaclab_newton.physics import MJWarpSolverCfg, NewtonCfg, NewtonCollisionPipelineCfg, NewtonShapeCfg
from isaaclab_physx.physics import PhysxCfg

import isaaclab.sim as sim_utils
from isaaclab.assets import AssetBaseCfg, RigidObjectCfg
from isaaclab.envs import ManagerBasedRLEnvCfg
from isaaclab.managers import EventTermCfg as EventTerm
from isaaclab.managers import ObservationGroupCfg as ObsGroup
from isaaclab.managers import ObservationTermCfg as ObsTerm
from isaaclab.managers import RewardTermCfg as RewTerm
from isaaclab.managers import SceneEntityCfg
from isaaclab.managers import TerminationTermCfg as DoneTerm
from isaaclab.scene import InteractiveSceneCfg
from isaaclab.utils import configclass
from isaaclab.visualizers import VisualizerCfg

from isaaclab_tasks.utils import PresetCfg
from isaaclab_tasks.utils.hydra import preset

from vt_refine.assets.aloha import ALOHA_JOINT_NAMES, aloha_articulation_cfg
from vt_refine.sensors.piezo_tactile import PiezoTactileSensorCfg
from vt_refine.utils.device import default_device

from . import mdp
from .geometry import assembly_geometry
from .point_cloud_cfg import CAMERA_POS, CAMERA_ROT, PointCloudCfg, WorkspaceCameraCfg

JOINTS = SceneEntityCfg("robot", joint_names=list(ALOHA_JOINT_NAMES), preserve_order=True)
"""The 16 actuated joints in the facts file's order (left arm then right arm)."""

TABLE_SIZE = (1.2, 0.8, 0.04)
"""Table box [m]; its top is the env frame's z = 0."""

PROGRESS_DISTANCE_SCALE = 0.1
"""Distance of the plug from its assembled pose [m] beyond which the progress term's potential is flat: the parts
start about this far apart (socket and plug 0.1 m apart on y), so the shaped return spans the carry."""


@configclass
class AssemblyTaskCfg:
    """What is assembled and when it counts as assembled (filled per part by ``config/aloha``)."""

    assembly: str = MISSING
    """AutoMate id, name or task name of the assembly (see ``vt_refine.assets.parts.ASSEMBLY_SPECS``)."""
    clearance: float | None = None
    """Radial play of the procedural fit [m]; None: the play measured on AutoMate's meshes (1.8-3.3 mm). With
    ``mesh_dir``: the real meshes' play, None measures it."""
    success: mdp.AssemblySuccessCfg = mdp.AssemblySuccessCfg()
    """The success rule's thresholds (``assembled_plug_z`` comes from the geometry)."""
    terminate_on_success: bool = True
    """End the episode at the first assembled step (the return is then 1 or 0)."""

    # ---- real meshes instead of the procedural parts (see vt_refine.assets.part_files)
    mesh_dir: str | None = None
    """Folder with the real plug and socket meshes (OBJ/STL/PLY or USD; z up, insertion along -z)."""
    plug_mesh: str = "plug"
    """The plug's file in ``mesh_dir``: a file name, or a stem whose .obj/.stl/.ply/.usd* file is looked up."""
    socket_mesh: str = "socket"
    """The socket's file in ``mesh_dir`` (as ``plug_mesh``)."""
    plug_scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Per-axis scale of the plug file (AutoMate's scaled variants are non-uniform, e.g. (2, 2, 2.5))."""
    socket_scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Per-axis scale of the socket file."""
    mesh_unit_scale: float = 1.0
    """Metres per file unit after the per-axis scale (0.001 for files in mm)."""
    assembled_plug_pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Position of the plug file's origin in the socket file's frame when assembled, in the socket file's units;
    the default: the files are in their assembled configuration (as AutoMate's are)."""
    yaw_symmetry: int = 1
    """Yaw symmetry of a real fit about its axis (0 any yaw, n: multiples of 360/n deg); 1 aligns exactly."""
    seated: bool = True
    """Whether a real plug rests on a hard stop when assembled (False: only the stored pose defines it)."""


##
# Scene
##


@configclass
class AssemblySceneCfg(InteractiveSceneCfg):
    """Twin, table, socket and plug. Part USD paths are set by :class:`AssemblyEnvCfg`."""

    robot = aloha_articulation_cfg(prim_path="{ENV_REGEX_NS}/Robot")

    table = AssetBaseCfg(
        prim_path="{ENV_REGEX_NS}/Table",
        spawn=sim_utils.CuboidCfg(
            size=TABLE_SIZE,
            collision_props=sim_utils.UsdPhysicsCollisionCfg(),
            physics_material=sim_utils.RigidBodyMaterialCfg(static_friction=0.6, dynamic_friction=0.5),
            visual_material=sim_utils.PreviewSurfaceCfg(diffuse_color=(0.35, 0.30, 0.25)),
        ),
        init_state=AssetBaseCfg.InitialStateCfg(pos=(0.0, 0.0, -0.5 * TABLE_SIZE[2])),
    )

    # yawed 180 deg on the table at the paper's default poses; spawn paths filled in by the env cfg
    socket: RigidObjectCfg = RigidObjectCfg(
        prim_path="{ENV_REGEX_NS}/Socket",
        spawn=None,
        init_state=RigidObjectCfg.InitialStateCfg(pos=(0.0, -0.05, 0.003), rot=(0.0, 0.0, 1.0, 0.0)),
    )
    plug: RigidObjectCfg = RigidObjectCfg(
        prim_path="{ENV_REGEX_NS}/Plug",
        spawn=None,
        init_state=RigidObjectCfg.InitialStateCfg(pos=(0.0, 0.05, 0.003), rot=(0.0, 0.0, 1.0, 0.0)),
    )

    # the four FlexiTac pads; tactile points are expressed in the (fixed) camera frame
    tactile = PiezoTactileSensorCfg(
        prim_path="{ENV_REGEX_NS}/Robot", output_frame_pos=CAMERA_POS, output_frame_rot=CAMERA_ROT
    )

    # the fixed depth camera over the workspace (same pose as the tactile output frame: one cloud frame)
    camera = WorkspaceCameraCfg()

    light = AssetBaseCfg(
        prim_path="/World/light",
        spawn=sim_utils.DistantLightCfg(color=(1.0, 1.0, 1.0), intensity=2500.0),
    )


##
# MDP
##


@configclass
class ActionsCfg:
    """16 absolute joint-position targets in [-1, 1], rescaled to the joint limits."""

    joint_pos = mdp.JointPositionToLimitsActionCfg(
        asset_name="robot", joint_names=list(ALOHA_JOINT_NAMES), preserve_order=True, rescale_to_limits=True
    )


@configclass
class ObservationsCfg:
    @configclass
    class PolicyCfg(ObsGroup):
        """What the policy sees, as separate keys with a 2-step history (oldest first): ``point_cloud`` (E, 2, N + 1536,
        5), the merged visuo-tactile cloud (visual only for the -Visual tasks), and ``joint_pos`` (E, 2, 16)."""

        point_cloud = ObsTerm(func=mdp.merged_point_cloud)
        joint_pos = ObsTerm(func=mdp.joint_pos, params={"asset_cfg": JOINTS})

        def __post_init__(self):
            self.enable_corruption = False
            # a dict group: rsl-rl gets a nested TensorDict, the diffusion policy reads its keys
            self.concatenate_terms = False
            self.history_length = 2
            self.flatten_history_dim = False

    @configclass
    class CriticCfg(ObsGroup):
        """Asymmetric critic state, Tensor of shape (E, 34): joint positions + plug and socket poses (env frame;
        position and 6-D rotation each)."""

        joint_pos = ObsTerm(func=mdp.joint_pos, params={"asset_cfg": JOINTS})
        plug_pose = ObsTerm(func=mdp.part_pose_env, params={"asset_cfg": SceneEntityCfg("plug")})
        socket_pose = ObsTerm(func=mdp.part_pose_env, params={"asset_cfg": SceneEntityCfg("socket")})

        def __post_init__(self):
            self.enable_corruption = False
            self.concatenate_terms = True

    @configclass
    class TactileCfg(ObsGroup):
        """The pads' normalised readings as images (recorded in demos, plotted in reports)."""

        tactile_image = ObsTerm(func=mdp.tactile_image)

        def __post_init__(self):
            self.enable_corruption = False
            self.concatenate_terms = False

    policy: PolicyCfg = PolicyCfg()
    critic: CriticCfg = CriticCfg()
    tactile: TactileCfg = TactileCfg()


@configclass
class EventCfg:
    """Resets: robot to home, parts near the paper's default poses with random x/y/yaw offsets."""

    reset_robot = EventTerm(
        func=mdp.reset_joints_by_offset,
        mode="reset",
        params={"asset_cfg": SceneEntityCfg("robot"), "position_range": (0.0, 0.0), "velocity_range": (0.0, 0.0)},
    )
    reset_socket = EventTerm(
        func=mdp.reset_root_state_uniform,
        mode="reset",
        params={
            "asset_cfg": SceneEntityCfg("socket"),
            "pose_range": {"x": (-0.02, 0.02), "y": (-0.02, 0.02), "yaw": (-math.radians(15), math.radians(15))},
            "velocity_range": {},
        },
    )
    reset_plug = EventTerm(
        func=mdp.reset_root_state_uniform,
        mode="reset",
        params={
            "asset_cfg": SceneEntityCfg("plug"),
            "pose_range": {"x": (-0.02, 0.02), "y": (-0.02, 0.02), "yaw": (-math.radians(15), math.radians(15))},
            "velocity_range": {},
        },
    )


@configclass
class RewardsCfg:
    """Sparse success (the paper's only reward) and a metric of where episodes end up (success rate, failure stages)
    that adds nothing to the reward."""

    success = RewTerm(func=mdp.sparse_success, weight=1.0, params={})
    # weight 1 on a term that returns zeros: Isaac Lab's reward manager skips zero-weight terms, so a metric must not
    # have weight 0 or it never runs
    outcome = RewTerm(func=mdp.assembly_outcome_metric, weight=1.0, params={})
    # off (weight 0 is skipped): fine-tuning may turn it on, FinetuneSettings.progress_reward_weight
    progress = RewTerm(func=mdp.assembly_progress, weight=0.0, params={})


@configclass
class TerminationsCfg:
    time_out = DoneTerm(func=mdp.time_out, time_out=True)
    assembled = DoneTerm(func=mdp.assembled, params={})
    part_off_table = DoneTerm(
        func=mdp.part_off_table, params={"table_half_extent": (0.5 * TABLE_SIZE[0], 0.5 * TABLE_SIZE[1])}
    )
    physics_blowup = DoneTerm(func=mdp.physics_blowup)


##
# Physics
##


@configclass
class AssemblyPhysicsCfg(PresetCfg):
    """Physics backends: Newton + MuJoCo-Warp (default; CPU and GPU, kit-less) and PhysX (Isaac Sim)."""

    newton_mjwarp: NewtonCfg = NewtonCfg(
        solver_cfg=MJWarpSolverCfg(
            solver="newton",
            integrator="implicitfast",
            # pyramidal friction cones: 3x cheaper than elliptic on CPU, and grasps still hold
            cone="pyramidal",
            impratio=1.0,
            # a cap, not a cost: the solver stops once converged. Expert on peg-in-hole, 20 episodes at 10 envs: 20/20
            # with 5, 10, 20 and 50 iterations, 132 / 108 / 104 / 115 s (beside other jobs: the same within noise)
            iterations=50,
            ls_iterations=50,
            # per-world buffers: grasps peak at ~200 contacts on peg-in-hole and ~250 on the nut (finger links and
            # pads on convex-piece parts), and a pyramidal contact takes 4 constraint rows; an overflow silently
            # drops contacts (parts sink, tunnel), so leave headroom
            njmax=1600,
            nconmax=400,
            # Newton's collision pipeline: convex-hull pieces with per-shape contact gaps (MuJoCo's would add margins)
            use_mujoco_contacts=False,
        ),
        collision_cfg=NewtonCollisionPipelineCfg(rigid_contact_max=None),
        # a 5 mm contact gap: the 0.1 m default floods the contact buffers with far-away pairs
        default_shape_cfg=NewtonShapeCfg(gap=0.005),
        # two solver substeps (240 Hz): MuJoCo's contact time constant must exceed 2 solver steps, and a 10 ms
        # one (the pads' and parts' solref) is what keeps a squeezed part from sinking into the pads. Measured (the
        # expert as above): 1 substep 5/20 (the grasps slip, 97 s), 2 20/20 (115 s), 3 20/20 (161 s)
        num_substeps=2,
        use_cuda_graph=True,
    )
    physx: PhysxCfg = PhysxCfg(bounce_threshold_velocity=0.2, gpu_max_rigid_patch_count=2**20)
    default: NewtonCfg = newton_mjwarp


##
# Environment
##


@configclass
class AssemblyEnvCfg(ManagerBasedRLEnvCfg):
    """Bimanual assembly on the ALOHA twin (state observations; the sensing issues add clouds/touch)."""

    task: AssemblyTaskCfg = AssemblyTaskCfg()
    point_cloud: PointCloudCfg = PointCloudCfg()
    scene: AssemblySceneCfg = AssemblySceneCfg(num_envs=16, env_spacing=2.5, replicate_physics=True)
    observations: ObservationsCfg = ObservationsCfg()
    actions: ActionsCfg = ActionsCfg()
    events: EventCfg = EventCfg()
    rewards: RewardsCfg = RewardsCfg()
    terminations: TerminationsCfg = TerminationsCfg()

    def __post_init__(self):
        self.decimation = 8  # 120 Hz physics -> 15 Hz policy
        self.episode_length_s = 240 * 8 / 120.0  # 240 control steps
        self.sim.dt = 1.0 / 120.0
        self.sim.render_interval = self.decimation
        self.sim.physics = AssemblyPhysicsCfg()
        self.sim.default_visualizer_cfg = VisualizerCfg(eye=(0.9, 0.0, 0.7), lookat=(0.0, 0.0, 0.1))
        self.sim.device = default_device()
        if self.task.assembly is not MISSING:
            apply_assembly(self)

    def validate_config(self):
        """Run by Isaac Lab before the simulation starts: fail early and clearly on a missing GPU
        (Isaac Lab's CLI defaults ``--device`` to cuda:0 even on machines without one)."""
        import torch

        if str(self.sim.device).startswith("cuda") and not torch.cuda.is_available():
            _remove_unstarted_run_folder(getattr(self, "log_dir", None))
            raise RuntimeError(
                f"vt_refine: the simulation device is {self.sim.device} but this machine has no usable CUDA GPU "
                "(torch.cuda.is_available() is False). Rerun with --device cpu "
                "(the project's own `vt-refine` commands pick the CPU by themselves)."
            )


def _remove_unstarted_run_folder(log_dir: str | None) -> None:
    """Delete the run folder ``isaaclab train`` made before building the env, when it holds nothing but its
    startup manifest (else ``isaaclab play`` would later pick it and fail on "No checkpoints"); empty parents
    up to ``logs/`` go too. A folder with anything else in it is left alone."""
    import os
    from pathlib import Path

    if not log_dir or not Path(log_dir).is_dir():
        return
    folder = Path(log_dir)
    if any(entry.name != "run.json" and not entry.name.startswith(".run.json.") for entry in folder.iterdir()):
        return
    for entry in folder.iterdir():
        entry.unlink()
    folder.rmdir()
    # logs/rsl_rl/<experiment>, logs/rsl_rl, logs: only while empty, and never above a folder named logs
    inside_logs = [parent for parent in folder.parents if "logs" in parent.parts]
    for parent in inside_logs:
        if any(parent.iterdir()):
            break
        os.rmdir(parent)


def success_rule(task: AssemblyTaskCfg, geometry) -> mdp.AssemblySuccessCfg:
    """The task's success thresholds with the geometry's assembled height; refuses an xy bound below the fit's play."""
    rule = task.success.replace(assembled_plug_z=float(geometry.assembled_plug_z))
    if rule.xy_threshold < geometry.clearance:
        raise ValueError(
            f"task.success.xy_threshold={rule.xy_threshold * 1000:.2f} mm is below the fit's radial play "
            f"{geometry.clearance * 1000:.2f} mm: a fully inserted plug resting against the bore's side would fail; "
            "raise it to at least the play")
    return rule


def apply_assembly(cfg: AssemblyEnvCfg) -> None:
    """Spawn the chosen assembly's parts and wire its geometry into the success terms."""
    from vt_refine.assets.parts_usd import assembly_usd_paths

    task = cfg.task
    geometry = assembly_geometry(task)
    # convex pieces for Newton (CPU and GPU: robust grasps, 3-5x cheaper than triangle meshes);
    # PhysX gets SDF colliders of the triangle mesh
    plug_usd, socket_usd = assembly_usd_paths(geometry)
    plug_sdf, socket_sdf = assembly_usd_paths(geometry, collision_approximation="sdf")
    cfg.scene.plug.spawn = preset(
        default=sim_utils.UsdFileCfg(usd_path=str(plug_usd)), physx=sim_utils.UsdFileCfg(usd_path=str(plug_sdf))
    )
    cfg.scene.socket.spawn = preset(
        default=sim_utils.UsdFileCfg(usd_path=str(socket_usd)), physx=sim_utils.UsdFileCfg(usd_path=str(socket_sdf))
    )
    rule = success_rule(task, geometry)
    cfg.rewards.success.params = {"rule": rule}
    cfg.rewards.outcome.params = {"rule": rule, "insertion_depth": float(geometry.insertion_depth)}
    cfg.rewards.progress.params = {"rule": rule, "distance_scale": PROGRESS_DISTANCE_SCALE}
    if task.terminate_on_success:
        cfg.terminations.assembled = DoneTerm(func=mdp.assembled, params={"rule": rule})
    else:
        cfg.terminations.assembled = None
