"""A scripted bimanual expert for the assembly tasks, batched over envs.

The left arm grasps the socket and the right arm the plug (both from the side, fingers horizontal),
both lift, the plug is brought above the socket in the air, aligned with the socket's axis, inserted
(with a small circular search when contact stalls it) and released. Joint-position targets come from
the twin's batched IK; the expert reads privileged state (part poses) the way a teleoperator sees it.

Legend: E envs; poses are (E, 4, 4) homogeneous matrices in the env frame (table top at z = 0).
Phases run on a per-env step counter, with per-env randomised durations and waypoints so that demos
differ the way human ones do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from vt_refine.assets.aloha import ALOHA_JOINT_NAMES, FINGER_STROKE
from vt_refine.assets.kinematics import ArmKinematics, frame_from_axes
from vt_refine.assets.parts import AssemblyGeometry

PHASES = ("pregrasp", "approach", "close", "lift", "align", "insert", "release", "retreat")


@dataclass
class ScriptedExpertCfg:
    """Hyper-parameters of the scripted expert (durations in control steps at 15 Hz)."""

    durations: dict[str, int] = field(default_factory=lambda: {
        "pregrasp": 22, "approach": 16, "close": 10, "lift": 24, "align": 36, "insert": 60, "release": 8, "retreat": 8,
    })
    duration_jitter: float = 0.15
    """Relative +- jitter of each phase duration (uniform, per env)."""
    pregrasp_backoff: float = 0.085
    """Distance [m] behind the grasp point along the approach axis before closing in."""
    approach_pitch_deg: float = 15.0
    """The fingers point this far below horizontal when grasping a low grasp site, so the wrist and gripper
    body stay clear of the table while the finger tips reach low [deg]."""
    level_grasp_height: float = 0.04
    """Grasp sites at least this high above the table are approached level (pitch 0) [m]."""
    grasp_point_ahead: float = 0.015
    """The grasp point (the part's grasp site) sits this far ahead of the pad centres, towards the tips [m]."""
    squeeze: float = 0.012
    """Finger target inside the object surface [m]: with the 400 N/m finger PD, about 4.8 N per pad (the fingers'
    effort limit is 5 N). MuJoCo's soft friction lets a held part creep through the pads at a rate that falls as the
    pads press deeper, and a socket creeping down its grasp brings the left fingers up under the plug's seat."""
    carry_socket_pos: tuple[float, float, float] = (0.0, -0.06, 0.11)
    """Where the left grasp frame holds the socket in the air (env frame) [m]."""
    carry_noise: float = 0.01
    """Uniform +- noise on carry positions [m]."""
    lift_height: float = 0.12
    """Height the right arm lifts the plug by before aligning [m] (at least)."""
    carry_clearance: float = 0.06
    """While carried, the plug's bottom stays this far above the held socket's top [m]."""
    preinsert_gap: float = 0.015
    """Gap between the plug's bottom and the socket's top before inserting [m]."""
    hover_height: float = 0.05
    """The plug first hovers this far above the pre-insert height, then comes down onto the socket's axis [m]."""
    insert_speed: float = 0.0012
    """Descent per control step during insertion [m] (about 18 mm/s)."""
    insert_overshoot: float = 0.003
    """The descent target goes this far past the assembled depth [m] so contact keeps pushing."""
    seat_tolerance: float = 0.0015
    """The plug counts as seated within this height of its assembled pose, on the socket's axis within
    ``seat_xy_tolerance`` [m]."""
    seat_xy_tolerance: float = 0.0015
    """Lateral tolerance of the seated check [m]."""
    seat_steps: int = 3
    """Steps the plug must stay seated before the hand lets go: the release starts then, not at the end of the
    insert phase, because every step the parts are carried the socket creeps further through the left pads."""
    search_radius: float = 0.0015
    """Radius of the circular search when insertion stalls [m]."""
    search_period: int = 12
    """Steps per search circle."""
    stall_steps: int = 8
    """Steps without progress (plug above the descent target by > 2 mm) before searching."""
    socket_yaw_share: float = 1.0
    """Fraction (0..1) of the plug's yaw correction about the insertion axis made by turning the socket (left hand)
    instead of the plug: at the high carry pose the right wrist is near its singularity (forearm roll and wrist
    rotate almost coaxial), where a ~20 deg hand yaw makes the IK flip the wrist and fling the plug out of the pads,
    while the left arm holds the socket low with its wrist well bent."""
    waypoint_noise: float = 0.002
    """Uniform +- noise on grasp positions [m]."""
    ik_iterations: int = 12

    @classmethod
    def for_assembly(cls, name: str) -> "ScriptedExpertCfg":
        """The default cfg with the per-assembly overrides of :data:`ASSEMBLY_EXPERT_OVERRIDES` applied.

        Args:
            name: The assembly's snake-case spec name (``AssemblySpec.name``), e.g. "nut_and_bolt".
        """
        cfg = cls()
        for key, value in ASSEMBLY_EXPERT_OVERRIDES.get(name, {}).items():
            if key == "durations":
                cfg.durations = {**cfg.durations, **value}
            else:
                setattr(cfg, key, value)
        return cfg

    def longest_script(self) -> int:
        """Control steps of the longest possible script (every phase at its +jitter maximum)."""
        return sum(round(d * (1.0 + self.duration_jitter)) for d in (self.durations[p] for p in PHASES))


ASSEMBLY_EXPERT_OVERRIDES: dict[str, dict] = {
    # the 23 mm nut rises only 2 mm above the pad centres (the fingers cannot go lower without touching the
    # table): at the default 0.2 m/s lift it slides and pivots out, so lift slowly and carry it lower; the
    # time comes out of the alignment and the insertion, which the nut's 34 mm travel still fits
    "nut_and_bolt": {
        "durations": {"lift": 56, "align": 28, "insert": 44},
        "carry_clearance": 0.03,
        "carry_socket_pos": (0.0, -0.06, 0.08),
    },
    # the bayonet's socket creeps ~0.125 mm per carried step down through the left pads until the sleeve lands
    # on the fingertips instead of the collar: a quicker lift and alignment and a lower hover seat it sooner
    "bayonet": {
        "durations": {"lift": 16, "align": 24},
        "hover_height": 0.03,
    },
}
"""Expert settings that differ from :class:`ScriptedExpertCfg`'s defaults, by assembly name."""


class ScriptedAssemblyExpert:
    """Batched scripted expert. Call :meth:`reset` after the env resets, then :meth:`act` every step."""

    def __init__(self, env, geometry: AssemblyGeometry, cfg: ScriptedExpertCfg | None = None, seed: int = 0):
        self.env = env
        self.cfg = cfg or ScriptedExpertCfg.for_assembly(geometry.spec.name)
        horizon = int(getattr(env, "max_episode_length", 0))
        if horizon and self.cfg.longest_script() > horizon:
            raise ValueError(
                f"ScriptedExpertCfg: the phase durations {self.cfg.durations} with +-{self.cfg.duration_jitter:.0%} "
                f"jitter can take {self.cfg.longest_script()} control steps, more than the episode's {horizon}; "
                "shorten a phase or lower duration_jitter."
            )
        if not 0.0 <= self.cfg.socket_yaw_share <= 1.0:
            raise ValueError(f"ScriptedExpertCfg.socket_yaw_share must be in [0, 1]; got {self.cfg.socket_yaw_share!r}")
        self.geometry = geometry
        self.device = env.device
        self.num_envs = env.num_envs
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        robot = env.scene["robot"]
        self._robot = robot
        self._joint_ids = torch.tensor([robot.joint_names.index(n) for n in ALOHA_JOINT_NAMES], device=self.device)
        limits = robot.data.joint_pos_limits.torch[0, self._joint_ids]
        self._lo, self._hi = limits[:, 0].to(torch.float64), limits[:, 1].to(torch.float64)
        self.left = ArmKinematics("left", self.device)
        self.right = ArmKinematics("right", self.device)
        e = self.num_envs
        self.step_count = torch.zeros(e, dtype=torch.long, device=self.device)
        self.boundaries = torch.zeros(e, len(PHASES), dtype=torch.long, device=self.device)
        self.q_cmd = torch.zeros(e, 16, dtype=torch.float64, device=self.device)
        self.waypoints: dict[str, torch.Tensor] = {}
        self._plug_in_grasp = torch.eye(4, dtype=torch.float64, device=self.device).repeat(e, 1, 1)
        self._best_height = torch.zeros(e, dtype=torch.float64, device=self.device)
        self._stalled = torch.zeros(e, dtype=torch.long, device=self.device)
        self._search_phase = torch.zeros(e, dtype=torch.float64, device=self.device)
        self._insert_start_z = torch.zeros(e, dtype=torch.float64, device=self.device)
        self._socket_goal_pos = torch.zeros(e, 3, dtype=torch.float64, device=self.device)
        self._socket_goal_set = torch.zeros(e, dtype=torch.bool, device=self.device)
        self._socket_goal_yaw = torch.zeros(e, dtype=torch.float64, device=self.device)
        self._seated = torch.zeros(e, dtype=torch.long, device=self.device)

    # ------------------------------------------------------------------ state
    def _part_pose(self, name: str) -> torch.Tensor:
        data = self.env.scene[name].data
        pos = (data.root_pos_w.torch - self.env.scene.env_origins).to(torch.float64)
        quat = data.root_quat_w.torch.to(torch.float64)
        return _pose_from_pos_quat(pos, quat)

    def _joint_pos(self) -> torch.Tensor:
        return self._robot.data.joint_pos.torch[:, self._joint_ids].to(torch.float64)

    def _uniform(self, *shape: int, low: float = -1.0, high: float = 1.0) -> torch.Tensor:
        u = torch.rand(*shape, generator=self.generator, dtype=torch.float64)
        return (low + (high - low) * u).to(self.device)

    @property
    def phase(self) -> torch.Tensor:
        """Index into :data:`PHASES` of each env's current phase; len(PHASES) when done. (E,)"""
        return (self.step_count[:, None] >= self.boundaries).sum(dim=1)

    @property
    def done(self) -> torch.Tensor:
        """Whether each env's script has finished. Bool tensor of shape (E,)."""
        return self.phase >= len(PHASES)

    # ------------------------------------------------------------------ planning
    def reset(self, env_ids: torch.Tensor | None = None) -> None:
        """Plan the grasps of the given envs from the current part poses (call after env reset)."""
        if env_ids is None:
            env_ids = torch.arange(self.num_envs, device=self.device)
        n = len(env_ids)
        if n == 0:
            return
        cfg = self.cfg
        jitter = 1.0 + cfg.duration_jitter * self._uniform(n, len(PHASES))
        base = torch.tensor([cfg.durations[p] for p in PHASES], dtype=torch.float64, device=self.device)
        self.boundaries[env_ids] = torch.cumsum(torch.round(base * jitter).long().clamp(min=1), dim=1)
        self.step_count[env_ids] = 0
        q = self._joint_pos()[env_ids]
        self.q_cmd[env_ids] = q

        # plan on the parts' resting poses: right after a reset they are still dropping onto the table from
        # their spawn height, and a grasp planned that high would close above a short part's top
        socket = _resting_on_table(self._part_pose("socket")[env_ids])
        plug = _resting_on_table(self._part_pose("plug")[env_ids])
        sock_grasp = self._grasp_pose(socket, self.geometry.socket_grasp, (0.0, 1.0, 0.0), n, self.left, q[:, 0:6])
        plug_grasp = self._grasp_pose(plug, self.geometry.plug_grasp, (0.0, -1.0, 0.0), n, self.right, q[:, 8:14])
        home_l = self.left.forward(q[:, 0:6])
        home_r = self.right.forward(q[:, 8:14])

        wp = self.waypoints
        for key in ("home_l", "home_r", "pre_l", "pre_r", "grasp_l", "grasp_r", "carry_l", "carry_r"):
            if key not in wp:
                wp[key] = torch.eye(4, dtype=torch.float64, device=self.device).repeat(self.num_envs, 1, 1)
        wp["home_l"][env_ids], wp["home_r"][env_ids] = home_l, home_r
        wp["grasp_l"][env_ids], wp["grasp_r"][env_ids] = sock_grasp, plug_grasp
        wp["pre_l"][env_ids] = _translate_local(sock_grasp, (-cfg.pregrasp_backoff, 0.0, 0.0))
        wp["pre_r"][env_ids] = _translate_local(plug_grasp, (-cfg.pregrasp_backoff, 0.0, 0.0))
        carry_l = sock_grasp.clone()
        carry_l[:, :3, 3] = torch.tensor(cfg.carry_socket_pos, dtype=torch.float64, device=self.device)
        carry_l[:, :3, 3] += cfg.carry_noise * self._uniform(n, 3)
        wp["carry_l"][env_ids] = carry_l
        carry_r = plug_grasp.clone()
        # high enough that the plug's bottom clears the held socket's top by carry_clearance
        geo = self.geometry
        socket_top = carry_l[:, 2, 3] - geo.socket_grasp.center[2] + geo.socket_height
        carry_r[:, 2, 3] = torch.maximum(carry_r[:, 2, 3] + cfg.lift_height,
                                         socket_top + cfg.carry_clearance + geo.plug_grasp.center[2])
        carry_r[:, 1, 3] = 0.5 * (carry_r[:, 1, 3] + carry_l[:, 1, 3]) + 0.05
        wp["carry_r"][env_ids] = carry_r
        # nominal hand-to-plug transform, refined from measurements once grasped
        self._plug_in_grasp[env_ids] = torch.linalg.inv(plug_grasp) @ plug
        self._best_height[env_ids] = 1e9
        self._socket_goal_set[env_ids] = False
        self._stalled[env_ids] = 0
        self._seated[env_ids] = 0
        self._search_phase[env_ids] = 2 * math.pi * self._uniform(n, low=0.0, high=1.0)

    def _grasp_pose(self, part: torch.Tensor, site, approach_dir, n: int, arm: ArmKinematics,
                    q_start: torch.Tensor) -> torch.Tensor:
        """Tool-frame pose for grasping a part standing on the table: fingers level or pitched down, closing
        along the site's axis or one of its symmetric equivalents -- the one whose approach is reachable and
        closest to the arm's own direction."""
        order = max(int(getattr(site, "symmetry_order", 1)), 1)
        axis_local = torch.tensor(site.closing_axis, dtype=torch.float64, device=self.device)
        natural = torch.tensor(approach_dir, dtype=torch.float64, device=self.device).expand(n, 3)
        up = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64, device=self.device).expand(n, 3)
        pitch = 0.0 if site.center[2] >= self.cfg.level_grasp_height else math.radians(self.cfg.approach_pitch_deg)
        center = torch.tensor(site.center, dtype=torch.float64, device=self.device)
        pos = (part[:, :3, :3] @ center[None, :, None])[..., 0] + part[:, :3, 3]
        pos = pos + self.cfg.waypoint_noise * self._uniform(n, 3) * torch.tensor([1.0, 1.0, 0.3], device=self.device)
        best, best_cost = None, None
        for k in range(order):  # a handful of symmetric alternatives, not a per-env loop
            rot = _rot_z(torch.full((n,), 2 * math.pi * k / order, dtype=torch.float64, device=self.device))
            closing = (part[:, :3, :3] @ rot @ axis_local[None, :, None])[..., 0]
            closing[:, 2] = 0.0
            closing = torch.nn.functional.normalize(closing, dim=-1)
            horizontal = torch.cross(closing, up, dim=-1)  # perpendicular to the closing axis
            flip = (horizontal * natural).sum(-1) < 0
            horizontal = torch.where(flip[:, None], -horizontal, horizontal)
            x_axis = math.cos(pitch) * horizontal - math.sin(pitch) * up
            y_axis = torch.cross(up, horizontal, dim=-1)  # the closing axis, oriented so z points up-ish
            # the IK tool frame is the pad-centre midpoint, a little behind the grasp point
            pose = _translate_local(frame_from_axes(pos, x_axis, y_axis), (-self.cfg.grasp_point_ahead, 0.0, 0.0))
            _, error = arm.inverse(pose, q_start, iterations=40)
            deviation = torch.acos((horizontal * natural).sum(-1).clamp(-1.0, 1.0))
            cost = deviation + 10.0 * (error > 0.003).double()  # an unreachable grasp loses to any reachable one
            if best is None:
                best, best_cost = pose, cost
            else:
                better = cost < best_cost
                best = torch.where(better[:, None, None], pose, best)
                best_cost = torch.minimum(cost, best_cost)
        return best

    # ------------------------------------------------------------------ acting
    def act(self) -> torch.Tensor:
        """Actions for this step. Tensor of shape (E, 16) in [-1, 1] (the task's action space)."""
        cfg = self.cfg
        q = self._joint_pos()
        self._release_seated_plugs()
        phase = self.phase
        t = self.step_count
        starts = torch.cat([torch.zeros_like(self.boundaries[:, :1]), self.boundaries[:, :-1]], dim=1)
        idx = phase.clamp(max=len(PHASES) - 1)
        p0, p1 = starts.gather(1, idx[:, None])[:, 0], self.boundaries.gather(1, idx[:, None])[:, 0]
        u = ((t - p0).double() / (p1 - p0).clamp(min=1).double()).clamp(0.0, 1.0)  # linear phase progress
        s = _smoothstep(u)
        wp = self.waypoints

        ph = {name: phase == i for i, name in enumerate(PHASES)}
        done = phase >= len(PHASES)

        # ---- left arm: home -> pregrasp -> grasp -> (close) -> carry, then hold
        target_l = wp["carry_l"].clone()
        target_l = torch.where(ph["pregrasp"][:, None, None], _interp_pose(wp["home_l"], wp["pre_l"], s), target_l)
        target_l = torch.where(ph["approach"][:, None, None], _interp_pose(wp["pre_l"], wp["grasp_l"], s), target_l)
        target_l = torch.where(ph["close"][:, None, None], wp["grasp_l"], target_l)
        target_l = torch.where(ph["lift"][:, None, None], _interp_pose(wp["grasp_l"], wp["carry_l"], s), target_l)

        # ---- right arm: same until lift; then closed-loop alignment / insertion on the socket's pose
        target_r = wp["carry_r"].clone()
        target_r = torch.where(ph["pregrasp"][:, None, None], _interp_pose(wp["home_r"], wp["pre_r"], s), target_r)
        target_r = torch.where(ph["approach"][:, None, None], _interp_pose(wp["pre_r"], wp["grasp_r"], s), target_r)
        target_r = torch.where(ph["close"][:, None, None], wp["grasp_r"], target_r)
        target_r = torch.where(ph["lift"][:, None, None], _interp_pose(wp["grasp_r"], wp["carry_r"], s), target_r)

        in_loop = ph["align"] | ph["insert"] | ph["release"] | ph["retreat"] | done
        if in_loop.any():
            target_r = torch.where(in_loop[:, None, None], self._closed_loop_target(q, ph, s, u, done), target_r)
            upright = self._upright_socket_target(q, ph)
            # rotate the socket upright gradually over the first half of the alignment (no jerk in the pads)
            upright = torch.where((ph["align"] & (u < 0.5))[:, None, None],
                                  _interp_pose(wp["carry_l"], upright, align_halves(u)[0]), upright)
            target_l = torch.where(in_loop[:, None, None], upright, target_l)

        q_l, _ = self.left.inverse(target_l, q[:, 0:6], iterations=cfg.ik_iterations)
        q_r, _ = self.right.inverse(target_r, q[:, 8:14], iterations=cfg.ik_iterations)

        # ---- fingers: open until the close phase, then squeeze; the right hand opens on release
        open_q = FINGER_STROKE
        close_l = max(0.5 * self.geometry.socket_grasp.width - cfg.squeeze, 0.0)
        close_r = max(0.5 * self.geometry.plug_grasp.width - cfg.squeeze, 0.0)
        before_close = ph["pregrasp"] | ph["approach"]
        f_l = torch.where(before_close, torch.full_like(s, open_q), torch.full_like(s, close_l))
        f_l = torch.where(ph["close"], open_q + (close_l - open_q) * s, f_l)
        f_r = torch.where(before_close, torch.full_like(s, open_q), torch.full_like(s, close_r))
        f_r = torch.where(ph["close"], open_q + (close_r - open_q) * s, f_r)
        f_r = torch.where(ph["release"], close_r + (open_q - close_r) * s, f_r)
        f_r = torch.where(ph["retreat"] | done, torch.full_like(s, open_q), f_r)

        q_cmd = torch.cat([q_l, f_l[:, None], -f_l[:, None], q_r, f_r[:, None], -f_r[:, None]], dim=1)
        self.q_cmd = q_cmd
        self.step_count += 1
        return (2.0 * (q_cmd - self._lo) / (self._hi - self._lo) - 1.0).clamp(-1.0, 1.0).to(torch.float32)

    def _release_seated_plugs(self) -> None:
        """End the insert phase of envs whose plug has stayed seated for ``seat_steps`` steps (the later phases
        keep their durations)."""
        cfg, geo = self.cfg, self.geometry
        rel = torch.linalg.inv(self._part_pose("socket")) @ self._part_pose("plug")
        seated = ((rel[:, 2, 3] - geo.assembled_plug_z).abs() < cfg.seat_tolerance) & (
            torch.linalg.norm(rel[:, :2, 3], dim=-1) < cfg.seat_xy_tolerance)
        inserting = self.phase == PHASES.index("insert")
        self._seated = torch.where(inserting & seated, self._seated + 1, torch.zeros_like(self._seated))
        ready = self._seated >= cfg.seat_steps
        if ready.any():
            k = PHASES.index("insert")
            shift = (self.boundaries[:, k] - self.step_count).clamp(min=0) * ready.long()
            self.boundaries[:, k:] -= shift[:, None]

    def _upright_socket_target(self, q, ph) -> torch.Tensor:
        """Left tool target that holds the socket upright (its yaw kept) where it was when the lift ended:
        a socket pivoting in the pads under gravity would otherwise tilt the insertion axis."""
        socket = self._part_pose("socket")
        grasp_l = self.left.forward(q[:, 0:6])
        in_hand = torch.linalg.inv(grasp_l) @ socket
        start = ph["align"] & ~self._socket_goal_set
        self._socket_goal_pos = torch.where(start[:, None], socket[:, :3, 3], self._socket_goal_pos)
        # turn the socket (its yaw kept otherwise) by its share of the plug's yaw correction, fixed at the start
        socket_yaw = torch.atan2(socket[:, 1, 0], socket[:, 0, 0])
        rel = torch.linalg.inv(socket) @ self._part_pose("plug")
        rel_yaw = torch.atan2(rel[:, 1, 0], rel[:, 0, 0])
        goal_rel = _yaw_aligned(rel[:, :3, :3], int(getattr(self.geometry, "yaw_symmetry", 1)))
        correction = torch.remainder(torch.atan2(goal_rel[:, 1, 0], goal_rel[:, 0, 0]) - rel_yaw + math.pi,
                                     2 * math.pi) - math.pi  # the plug's yaw correction in the socket frame [rad]
        share = self.cfg.socket_yaw_share
        self._socket_goal_yaw = torch.where(start, socket_yaw - share * correction, self._socket_goal_yaw)
        self._socket_goal_set |= start
        goal = torch.eye(4, dtype=torch.float64, device=self.device).repeat(self.num_envs, 1, 1)
        goal[:, :3, :3] = _rot_z(self._socket_goal_yaw)
        goal[:, :3, 3] = self._socket_goal_pos
        return goal @ torch.linalg.inv(in_hand)

    def _closed_loop_target(self, q, ph, s, u, done) -> torch.Tensor:
        """Right grasp-frame target that puts the plug on the socket's axis at the planned height.

        ``s`` is the smoothed and ``u`` the linear progress through the current phase, each of shape (E,).
        """
        cfg, geo = self.cfg, self.geometry
        socket = self._part_pose("socket")
        plug = self._part_pose("plug")
        grasp_r = self.right.forward(q[:, 8:14])
        # measure how the plug sits in the hand while it is held (it may have slipped during the lift)
        holding = ph["align"] | ph["insert"]
        measured = torch.linalg.inv(grasp_r) @ plug
        self._plug_in_grasp = torch.where(holding[:, None, None], measured, self._plug_in_grasp)

        rel = torch.linalg.inv(socket) @ plug  # plug in socket frame
        height = rel[:, 2, 3]
        z_pre = geo.assembled_plug_z + geo.insertion_depth + cfg.preinsert_gap
        z_goal = geo.assembled_plug_z - cfg.insert_overshoot
        insert_start = self.boundaries[:, PHASES.index("insert") - 1]
        steps_in = (self.step_count - insert_start).clamp(min=0).double()
        # align: first hover well above the socket, then come down to the pre-insert height
        z_hover = z_pre + cfg.hover_height
        first_half, second_half = align_halves(u)
        z_align = z_hover + (z_pre - z_hover) * second_half
        z_des = torch.where(ph["align"], z_align, (z_pre - cfg.insert_speed * steps_in).clamp(min=z_goal))
        # once seated, hold the plug where it belongs instead of pressing it on: the push would load the socket's grasp
        z_des = torch.where(ph["release"] | ph["retreat"] | done, torch.full_like(height, geo.assembled_plug_z), z_des)

        # circular search while insertion stalls above the descent target
        stalled = ph["insert"] & (height > z_des + 0.002) & (height > self._best_height - 2e-4)
        self._stalled = torch.where(stalled, self._stalled + 1, torch.zeros_like(self._stalled))
        self._best_height = torch.where(ph["insert"], torch.minimum(self._best_height, height), self._best_height)
        searching = self._stalled > cfg.stall_steps
        angle = self._search_phase + 2 * math.pi * self.step_count.double() / cfg.search_period
        offset = torch.stack([torch.cos(angle), torch.sin(angle)], -1) * cfg.search_radius * searching[:, None]

        goal = torch.eye(4, dtype=torch.float64, device=self.device).repeat(self.num_envs, 1, 1)
        goal[:, 2, 3] = z_des
        goal[:, :2, 3] = offset
        # keep the plug's yaw about the socket axis where the fit is symmetric, else align it exactly
        goal[:, :3, :3] = _yaw_aligned(rel[:, :3, :3], int(getattr(geo, "yaw_symmetry", 1)))
        plug_goal = socket @ goal
        target = plug_goal @ torch.linalg.inv(self._plug_in_grasp)
        # after release, back the open hand away along its approach axis
        backoff = torch.zeros(self.num_envs, 3, dtype=torch.float64, device=self.device)
        backoff[:, 0] = -0.06 * s
        retreat = _translate_local(target, backoff)
        target = torch.where((ph["retreat"] | done)[:, None, None], retreat, target)
        # the first half of the alignment travels smoothly from the carry pose to the hover pose
        travel = _interp_pose(self.waypoints["carry_r"], target, first_half)
        return torch.where((ph["align"] & (u < 0.5))[:, None, None], travel, target)


# ---------------------------------------------------------------------- pose helpers


def _pose_from_pos_quat(pos: torch.Tensor, quat_xyzw: torch.Tensor) -> torch.Tensor:
    x, y, z, w = quat_xyzw.unbind(-1)
    rot = torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], -1).reshape(*pos.shape[:-1], 3, 3)
    pose = torch.zeros(*pos.shape[:-1], 4, 4, dtype=pos.dtype, device=pos.device)
    pose[..., :3, :3], pose[..., :3, 3], pose[..., 3, 3] = rot, pos, 1.0
    return pose


def _resting_on_table(pose: torch.Tensor) -> torch.Tensor:
    """The pose of a part standing upright on the table (z = 0, the frame convention's bottom face): the given
    pose's x, y and yaw, without the height and tilt it has while it settles."""
    out = torch.eye(4, dtype=pose.dtype, device=pose.device).repeat(*pose.shape[:-2], 1, 1)
    out[..., :3, :3] = _rot_z(torch.atan2(pose[..., 1, 0], pose[..., 0, 0]))
    out[..., :2, 3] = pose[..., :2, 3]
    return out


def _rot_z(angle: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    zero, one = torch.zeros_like(angle), torch.ones_like(angle)
    return torch.stack([c, -s, zero, s, c, zero, zero, zero, one], -1).reshape(*angle.shape, 3, 3)


def _translate_local(pose: torch.Tensor, offset) -> torch.Tensor:
    out = pose.clone()
    off = torch.as_tensor(offset, dtype=pose.dtype, device=pose.device)
    out[..., :3, 3] = pose[..., :3, 3] + (pose[..., :3, :3] @ off[..., None])[..., 0]
    return out


def _smoothstep(s: torch.Tensor) -> torch.Tensor:
    return s * s * (3.0 - 2.0 * s)


def align_halves(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Progress (0..1) of the alignment's lateral travel (first half) and its descent (second half) from the
    linear phase progress ``u``, each with its own smoothstep so both start and stop at zero speed: halving a
    single smoothstep would stop the travel and start the descent at peak speed, a jolt that shakes a light
    part (the 23 mm nut) out of the pads. Tensors of the shape of ``u``."""
    return _smoothstep((u * 2.0).clamp(0.0, 1.0)), _smoothstep((u * 2.0 - 1.0).clamp(0.0, 1.0))


def _interp_pose(a: torch.Tensor, b: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Pose interpolation: linear in position, geodesic in rotation. ``s`` of shape (E,)."""
    from .rotations import slerp_matrix

    out = a.clone()
    out[:, :3, 3] = a[:, :3, 3] + (b[:, :3, 3] - a[:, :3, 3]) * s[:, None]
    out[:, :3, :3] = slerp_matrix(a[:, :3, :3], b[:, :3, :3], s)
    return out


def _yaw_aligned(rel_rot: torch.Tensor, symmetry: int) -> torch.Tensor:
    """Goal rotation of the plug in the socket frame: upright, yaw snapped to the nearest symmetric
    equivalent (symmetry 0 = any yaw: keep the current one)."""
    yaw = torch.atan2(rel_rot[:, 1, 0], rel_rot[:, 0, 0])
    if symmetry == 0:
        goal_yaw = yaw
    else:
        step = 2 * math.pi / symmetry
        goal_yaw = torch.round(yaw / step) * step
    return _rot_z(goal_yaw)
