"""A scripted bimanual expert for the assembly tasks, batched over envs.

The way the paper's real operator assembles (31 public peg-in-hole demos): the left hand takes the socket,
lifts it a little, slides it to the middle of the table and sets it down; the right hand takes the plug, lifts
it over the socket, aligns it with the socket's axis and inserts it into (or over) the socket standing on the
table, pushing it home, then lets go. Where the left fingers would be in the plug's way (a nut over a bolt's
shank, a collar over a shaft), the left hand lets go of the socket and backs away before the plug comes down.
A plug without a seat (the collar) is held at its assembled pose instead of released.

Joint-position targets come from the twin's batched IK; the expert reads privileged state (part poses) the way
a teleoperator sees it. Legend: E envs; poses are (E, 4, 4) homogeneous matrices in the env frame (table top at
z = 0). Phases run on a per-env step counter with per-env randomised durations and waypoints, so that demos
differ the way human ones do; the insertion ends on state (the plug seated), not on the clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from vt_refine.assets.aloha import ALOHA_JOINT_NAMES, FINGER_STROKE
from vt_refine.assets.kinematics import ArmKinematics, frame_from_axes
from vt_refine.assets.parts import AssemblyGeometry

PHASES = ("pregrasp", "approach", "close", "lift", "align", "insert", "release", "retreat")
"""The script. ``lift``: the left hand lifts, slides and sets down the socket while the right hand lifts the plug
over it; ``align``: the plug comes onto the socket's axis (and a left hand in its way lets go and backs off)."""


@dataclass
class ScriptedExpertCfg:
    """Hyper-parameters of the scripted expert (durations in control steps at 15 Hz, lengths in m)."""

    durations: dict[str, int] = field(default_factory=lambda: {
        "pregrasp": 22, "approach": 16, "close": 10, "lift": 40, "align": 36, "insert": 60, "release": 8, "retreat": 8,
    })
    duration_jitter: float = 0.0
    """Relative +- jitter of each phase duration (uniform, per env). Off: a policy cannot tell from two frames when
    a jittered phase will end, and over many demos the timings average out (a BC policy trained on 30 peg demos
    with 10 % jitter missed its own training demos by 14 mm at the pads while the grippers closed, where holding
    still misses by 1 mm)."""
    close_dwell: int = 0
    """Control steps the hands wait at their grasp poses, fingers still open, before the close ramp (added to the
    close phase). A BC policy trained without it closes a few steps early, while the hand is still coming in at up
    to 7 mm per step: bc3 lifted the socket 3-27 mm farther out in the hand than any demo. With a dwell of more
    than that timing error, an early close still happens with the hand in place. 0 = close on arrival."""
    pregrasp_backoff: float = 0.085
    """Distance behind the grasp point along the approach axis before closing in."""
    approach_pitch_deg: float = 15.0
    """The fingers point this far below horizontal when grasping a low grasp site, so the wrist and gripper
    body stay clear of the table while the finger tips reach low [deg]."""
    level_grasp_height: float = 0.04
    """Grasp sites at least this high above the table are approached level (pitch 0)."""
    grasp_point_ahead: float = 0.015
    """The grasp point (the part's grasp site) sits this far ahead of the pad centres, towards the tips."""
    grasp_depth_noise: float = 0.0
    """Uniform +- noise on how deep each hand reaches in along its fingers before closing, per env and hand [m]:
    the parts then sit at varied places along the pads, and the expert (acting on the true poses) inserts from
    wherever the plug and socket are held. Off: every demo holds them at one spot, and a policy whose grasp lands
    elsewhere (bc3: the socket 3-27 mm farther out) meets a contact pattern and a hold no demo showed. Measured
    at 0.008 (peg, 30 demos): expert 30/30, socket 12.9-27.8 mm along the fingers; BC VT 0.24 and visual 0.24
    (12/50 each) against 0.16-0.20 and 0.30 on one-spot demos (README, bc9)."""
    squeeze: float = 0.012
    """Finger target inside the object surface: with the 400 N/m finger PD, about 4.8 N per pad (the fingers'
    effort limit is 5 N). MuJoCo's soft friction lets a held part creep through the pads at a rate that falls as
    the pads press deeper."""
    socket_place_xy: tuple[float, float] = (0.0, 0.0)
    """Where the left hand sets the socket down (env frame): the middle of the table, as the real operator did."""
    place_noise: float = 0.0
    """Uniform +- noise on the place position, per axis. Off: the operator slid the socket to one spot, and the
    plug's target is then known up to the grasp offsets instead of +-1 cm that the policy would have to read off
    the cloud."""
    socket_lift: float = 0.015
    """How high the socket is lifted while it slides to its place (the real operator: at most 22 mm)."""
    set_down_gap: float = 0.001
    """The socket is set down this far above the table (the last mm it drops keeps the pads off the table)."""
    preinsert_gap: float = 0.015
    """Gap between the plug's bottom and the socket's top before inserting."""
    hover_height: float = 0.03
    """The plug is carried this far above the pre-insert height, then comes down onto the socket's axis; above
    ``socket_lift``, so the plug clears the sliding socket."""
    insert_speed: float = 0.0012
    """Descent per control step during insertion (about 18 mm/s)."""
    push_depth: float = 0.008
    """The descent target lies this far below the assembled pose, so the arm pushes a seated plug home whatever
    its exact height; a plug without a seat is taken to its assembled pose exactly."""
    seat_tolerance: float = 0.0015
    """The plug counts as seated within this height of its assembled pose, on the socket's axis within the fit's
    play plus ``seat_xy_margin``."""
    seat_xy_margin: float = 0.001
    seat_steps: int = 3
    """Steps the plug must stay seated before the insertion ends (the release starts then)."""
    release_backoff: float = 0.06
    """How far an open hand backs away along its approach axis."""
    socket_yaw_share: float = 1.0
    """Fraction (0..1) of the plug's yaw correction about the insertion axis made by turning the socket while the
    left hand slides it, the rest by the right wrist: turning the right hand by ~20 deg near the high carry pose
    brings its wrist near the singularity (forearm roll and wrist rotate almost coaxial), where the IK may flip."""
    waypoint_noise: float = 0.001
    """Uniform +- noise on grasp positions (in-hand offsets the closed-loop alignment then corrects)."""
    ik_iterations: int = 12
    recovery_noise: float = 0.0
    """Recovery demonstrations (DART-style): std [rad] of a slowly varying noise added to the arm joints of the
    action that is executed, while the demo records the expert's own action; the closed-loop expert then shows
    how to come back from the states the noise leads to. 0 = off. Fingers are never perturbed."""
    recovery_noise_correlation: float = 0.9
    """Step-to-step correlation of that noise (0.9: it drifts over ~10 steps, so the state leaves the nominal path
    instead of the joint PD filtering it out)."""

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
        return sum(round(d * (1.0 + self.duration_jitter)) for d in self.phase_steps())

    def phase_steps(self) -> list[int]:
        """Nominal control steps of each phase of :data:`PHASES` (the close phase includes the dwell)."""
        return [self.durations[p] + (self.close_dwell if p == "close" else 0) for p in PHASES]


ASSEMBLY_EXPERT_OVERRIDES: dict[str, dict] = {
    # the 23 mm nut rises only 2 mm above the pad centres (the fingers cannot go lower without touching the
    # table): lifted quickly it slides and pivots out of the pads, so it is lifted slowly over the 79 mm bolt,
    # and comes down the 66 mm shank faster
    "nut_and_bolt": {
        "durations": {"lift": 56, "align": 28, "insert": 48},
        "insert_speed": 0.002,
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
        if self.cfg.hover_height <= self.cfg.socket_lift:
            raise ValueError("ScriptedExpertCfg.hover_height must exceed socket_lift: the carried plug must clear the "
                             "socket while it slides")
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
        self._seated = torch.zeros(e, dtype=torch.long, device=self.device)
        self._noise = torch.zeros(e, 16, dtype=torch.float64, device=self.device)
        arm = torch.ones(16, dtype=torch.float64, device=self.device)
        arm[[6, 7, 14, 15]] = 0.0  # the fingers keep their command: a perturbed grasp would just drop the part
        self._noise_mask = arm

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
        """Plan the grasps, the socket's place and the plug's carry pose of the given envs from the current part
        poses (call after env reset)."""
        if env_ids is None:
            env_ids = torch.arange(self.num_envs, device=self.device)
        n = len(env_ids)
        if n == 0:
            return
        cfg, geo = self.cfg, self.geometry
        jitter = 1.0 + cfg.duration_jitter * self._uniform(n, len(PHASES))
        base = torch.tensor(cfg.phase_steps(), dtype=torch.float64, device=self.device)
        self.boundaries[env_ids] = torch.cumsum(torch.round(base * jitter).long().clamp(min=1), dim=1)
        self.step_count[env_ids] = 0
        q = self._joint_pos()[env_ids]
        self.q_cmd[env_ids] = q

        # plan on the parts' resting poses: right after a reset they are still dropping onto the table from
        # their spawn height, and a grasp planned that high would close above a short part's top
        socket = _resting_on_table(self._part_pose("socket")[env_ids])
        plug = _resting_on_table(self._part_pose("plug")[env_ids])
        grasp_l = self._grasp_pose(socket, geo.socket_grasp, (0.0, 1.0, 0.0), n, self.left, q[:, 0:6])
        grasp_r = self._grasp_pose(plug, geo.plug_grasp, (0.0, -1.0, 0.0), n, self.right, q[:, 8:14])

        # the socket's place: the middle of the table, turned by its share of the plug's yaw correction
        place = torch.eye(4, dtype=torch.float64, device=self.device).repeat(n, 1, 1)
        place[:, :2, 3] = torch.tensor(cfg.socket_place_xy, dtype=torch.float64, device=self.device)
        place[:, :2, 3] += cfg.place_noise * self._uniform(n, 2)
        place[:, 2, 3] = cfg.set_down_gap
        rel = torch.linalg.inv(socket) @ plug
        correction = _yaw_correction(rel[:, :3, :3], geo.yaw_symmetry)
        socket_yaw = torch.atan2(socket[:, 1, 0], socket[:, 0, 0])
        place[:, :3, :3] = _rot_z(socket_yaw - cfg.socket_yaw_share * correction)
        place_l = place @ torch.linalg.inv(socket) @ grasp_l

        # the plug's carry pose: over the place, its bottom at the hover height above the socket's top
        carry_plug = plug.clone()
        carry_plug[:, :2, 3] = place[:, :2, 3]
        carry_plug[:, 2, 3] = geo.socket_height + cfg.preinsert_gap + cfg.hover_height
        carry_r = carry_plug @ torch.linalg.inv(plug) @ grasp_r
        lifted_r = grasp_r.clone()
        lifted_r[:, 2, 3] = carry_r[:, 2, 3]  # straight up first: the plug never sweeps over the socket low

        wp = self.waypoints
        for key in ("home_l", "home_r", "pre_l", "pre_r", "grasp_l", "grasp_r", "lifted_l", "slid_l", "place_l",
                    "away_l", "lifted_r", "carry_r"):
            if key not in wp:
                wp[key] = torch.eye(4, dtype=torch.float64, device=self.device).repeat(self.num_envs, 1, 1)
        wp["home_l"][env_ids] = self.left.forward(q[:, 0:6])
        wp["home_r"][env_ids] = self.right.forward(q[:, 8:14])
        wp["grasp_l"][env_ids], wp["grasp_r"][env_ids] = grasp_l, grasp_r
        wp["pre_l"][env_ids] = _translate_local(grasp_l, (-cfg.pregrasp_backoff, 0.0, 0.0))
        wp["pre_r"][env_ids] = _translate_local(grasp_r, (-cfg.pregrasp_backoff, 0.0, 0.0))
        up = torch.tensor([0.0, 0.0, cfg.socket_lift], dtype=torch.float64, device=self.device)
        wp["lifted_l"][env_ids] = _translate_world(grasp_l, up)
        wp["slid_l"][env_ids] = _translate_world(place_l, up)
        wp["place_l"][env_ids] = place_l
        wp["away_l"][env_ids] = _translate_world(_translate_local(place_l, (-cfg.release_backoff, 0.0, 0.0)), 2 * up)
        wp["lifted_r"][env_ids], wp["carry_r"][env_ids] = lifted_r, carry_r
        # nominal hand-to-plug transform, refined from measurements once grasped
        self._plug_in_grasp[env_ids] = torch.linalg.inv(grasp_r) @ plug
        self._seated[env_ids] = 0
        self._noise[env_ids] = 0.0

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
        # the IK tool frame is the pad-centre midpoint, a little behind the grasp point (and a random depth more)
        back = torch.zeros(n, 3, dtype=torch.float64, device=self.device)
        back[:, 0] = -self.cfg.grasp_point_ahead
        if self.cfg.grasp_depth_noise > 0:  # drawn only when on, so the default demos stay as they were
            back[:, 0] -= self.cfg.grasp_depth_noise * self._uniform(n)
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
            pose = _translate_local(frame_from_axes(pos, x_axis, y_axis), back)
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
        cfg, geo = self.cfg, self.geometry
        q = self._joint_pos()
        self._end_seated_insertions()
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
        after_lift = ~(ph["pregrasp"] | ph["approach"] | ph["close"] | ph["lift"])
        lets_go = not geo.socket_held_while_inserting

        # ---- left arm: home -> pregrasp -> grasp -> (close) -> lift, slide, set down -> hold, or let go and back off
        target_l = wp["place_l"].clone()
        target_l = torch.where(ph["pregrasp"][:, None, None], _interp_pose(wp["home_l"], wp["pre_l"], s), target_l)
        target_l = torch.where(ph["approach"][:, None, None], _interp_pose(wp["pre_l"], wp["grasp_l"], s), target_l)
        target_l = torch.where(ph["close"][:, None, None], wp["grasp_l"], target_l)
        lift_path = _along_path([wp["grasp_l"], wp["lifted_l"], wp["slid_l"], wp["place_l"]], (0.25, 0.5, 0.25), u)
        target_l = torch.where(ph["lift"][:, None, None], lift_path, target_l)
        if lets_go:  # the first quarter of the alignment opens the hand, the second backs it away
            back = _interp_pose(wp["place_l"], wp["away_l"], _smoothstep((u * 4.0 - 1.0).clamp(0.0, 1.0)))
            target_l = torch.where(ph["align"][:, None, None], back, target_l)
            target_l = torch.where((after_lift & ~ph["align"])[:, None, None], wp["away_l"], target_l)

        # ---- right arm: same until lift (straight up, then over the place); then closed loop on the socket's pose
        target_r = wp["carry_r"].clone()
        target_r = torch.where(ph["pregrasp"][:, None, None], _interp_pose(wp["home_r"], wp["pre_r"], s), target_r)
        target_r = torch.where(ph["approach"][:, None, None], _interp_pose(wp["pre_r"], wp["grasp_r"], s), target_r)
        target_r = torch.where(ph["close"][:, None, None], wp["grasp_r"], target_r)
        carry = _along_path([wp["grasp_r"], wp["lifted_r"], wp["carry_r"]], (0.5, 0.5), u)
        target_r = torch.where(ph["lift"][:, None, None], carry, target_r)
        if after_lift.any():
            target_r = torch.where(after_lift[:, None, None], self._closed_loop_target(q, ph, s, u, done), target_r)

        q_l, _ = self.left.inverse(target_l, q[:, 0:6], iterations=cfg.ik_iterations)
        q_r, _ = self.right.inverse(target_r, q[:, 8:14], iterations=cfg.ik_iterations)

        # ---- fingers: open until the close phase, then squeeze; open again where the hand lets go
        open_q = FINGER_STROKE
        close_l = max(0.5 * geo.socket_grasp.width - cfg.squeeze, 0.0)
        close_r = max(0.5 * geo.plug_grasp.width - cfg.squeeze, 0.0)
        before_close = ph["pregrasp"] | ph["approach"]
        wait = cfg.close_dwell / (cfg.durations["close"] + cfg.close_dwell)  # share of the close phase: open, still
        s_close = _smoothstep(((u - wait) / (1.0 - wait)).clamp(0.0, 1.0))
        f_l = torch.where(before_close, torch.full_like(s, open_q), torch.full_like(s, close_l))
        f_l = torch.where(ph["close"], open_q + (close_l - open_q) * s_close, f_l)
        if lets_go:
            opening = _smoothstep((u * 4.0).clamp(0.0, 1.0))
            f_l = torch.where(ph["align"], close_l + (open_q - close_l) * opening, f_l)
            f_l = torch.where(after_lift & ~ph["align"], torch.full_like(s, open_q), f_l)
        f_r = torch.where(before_close, torch.full_like(s, open_q), torch.full_like(s, close_r))
        f_r = torch.where(ph["close"], open_q + (close_r - open_q) * s_close, f_r)
        if geo.seated:  # a plug without a seat stays held at its assembled pose
            f_r = torch.where(ph["release"], close_r + (open_q - close_r) * s, f_r)
            f_r = torch.where(ph["retreat"] | done, torch.full_like(s, open_q), f_r)

        q_cmd = torch.cat([q_l, f_l[:, None], -f_l[:, None], q_r, f_r[:, None], -f_r[:, None]], dim=1)
        self.q_cmd = q_cmd
        self.step_count += 1
        return (2.0 * (q_cmd - self._lo) / (self._hi - self._lo) - 1.0).clamp(-1.0, 1.0).to(torch.float32)

    def perturb(self, action: torch.Tensor) -> torch.Tensor:
        """The action to execute for recovery demonstrations: ``action`` (from :meth:`act`, Tensor of shape (E, 16)
        in [-1, 1]) plus the cfg's correlated joint noise; ``action`` itself unchanged when the noise is off."""
        cfg = self.cfg
        if cfg.recovery_noise <= 0.0:
            return action
        rho = cfg.recovery_noise_correlation
        fresh = torch.randn(self.num_envs, 16, generator=self.generator, dtype=torch.float64).to(self.device)
        self._noise = rho * self._noise + math.sqrt(1.0 - rho * rho) * cfg.recovery_noise * fresh
        scale = 2.0 / (self._hi - self._lo)  # rad -> action units
        return (action + (self._noise * self._noise_mask * scale).float()).clamp(-1.0, 1.0)

    def _end_seated_insertions(self) -> None:
        """End the insert phase of envs whose plug has stayed seated for ``seat_steps`` steps (the later phases
        keep their durations)."""
        cfg, geo = self.cfg, self.geometry
        rel = torch.linalg.inv(self._part_pose("socket")) @ self._part_pose("plug")
        seated = ((rel[:, 2, 3] - geo.assembled_plug_z).abs() < cfg.seat_tolerance) & (
            torch.linalg.norm(rel[:, :2, 3], dim=-1) < geo.clearance + cfg.seat_xy_margin)
        inserting = self.phase == PHASES.index("insert")
        self._seated = torch.where(inserting & seated, self._seated + 1, torch.zeros_like(self._seated))
        ready = self._seated >= cfg.seat_steps
        if ready.any():
            k = PHASES.index("insert")
            shift = (self.boundaries[:, k] - self.step_count).clamp(min=0) * ready.long()
            self.boundaries[:, k:] -= shift[:, None]

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
        z_pre = geo.socket_height + cfg.preinsert_gap
        z_hover = z_pre + cfg.hover_height
        # a seated plug is pushed home past its assembled pose; one without a seat is taken exactly there
        z_goal = geo.assembled_plug_z - (cfg.push_depth if geo.seated else 0.0)
        insert_start = self.boundaries[:, PHASES.index("insert") - 1]
        steps_in = (self.step_count - insert_start).clamp(min=0).double()
        # align: first travel at the hover height onto the socket's axis, then come down to the pre-insert height
        first_half, second_half = align_halves(u)
        z_align = z_hover + (z_pre - z_hover) * second_half
        z_des = torch.where(ph["align"], z_align, (z_pre - cfg.insert_speed * steps_in).clamp(min=z_goal))
        # once seated, hold the plug where it belongs instead of pressing on: the push would load the socket
        z_des = torch.where(ph["release"] | ph["retreat"] | done, torch.full_like(z_des, geo.assembled_plug_z), z_des)

        goal = torch.eye(4, dtype=torch.float64, device=self.device).repeat(self.num_envs, 1, 1)
        goal[:, 2, 3] = z_des
        # keep the plug's yaw about the socket axis where the fit is symmetric, else align it exactly
        goal[:, :3, :3] = _yaw_aligned(rel[:, :3, :3], geo.yaw_symmetry)
        target = socket @ goal @ torch.linalg.inv(self._plug_in_grasp)
        if geo.seated:  # after release, back the open hand away along its approach axis
            backoff = torch.zeros(self.num_envs, 3, dtype=torch.float64, device=self.device)
            backoff[:, 0] = -cfg.release_backoff * s
            target = torch.where((ph["retreat"] | done)[:, None, None], _translate_local(target, backoff), target)
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


def _translate_world(pose: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    out = pose.clone()
    out[..., :3, 3] = pose[..., :3, 3] + offset
    return out


def _along_path(poses: list[torch.Tensor], fractions: tuple[float, ...], u: torch.Tensor) -> torch.Tensor:
    """Pose along a path of waypoints at linear progress ``u`` (E,): segment i takes ``fractions[i]`` of the time
    and its own smoothstep, so the path stops at every waypoint instead of turning a corner at speed."""
    out = poses[0].clone()
    start = 0.0
    for a, b, frac in zip(poses[:-1], poses[1:], fractions):
        local = ((u - start) / frac).clamp(0.0, 1.0)
        out = torch.where((u >= start)[:, None, None], _interp_pose(a, b, _smoothstep(local)), out)
        start += frac
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
    from ..utils.rotations import slerp_matrix

    out = a.clone()
    out[:, :3, 3] = a[:, :3, 3] + (b[:, :3, 3] - a[:, :3, 3]) * s[:, None]
    out[:, :3, :3] = slerp_matrix(a[:, :3, :3], b[:, :3, :3], s)
    return out


def _yaw_correction(rel_rot: torch.Tensor, symmetry: int) -> torch.Tensor:
    """The plug's yaw correction about the socket axis [rad] to its nearest fitting yaw (0 for symmetry 0): (E,)."""
    yaw = torch.atan2(rel_rot[:, 1, 0], rel_rot[:, 0, 0])
    goal = torch.atan2(_yaw_aligned(rel_rot, symmetry)[:, 1, 0], _yaw_aligned(rel_rot, symmetry)[:, 0, 0])
    return torch.remainder(goal - yaw + math.pi, 2 * math.pi) - math.pi


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
