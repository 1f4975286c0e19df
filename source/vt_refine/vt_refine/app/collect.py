"""Collect demonstrations of the scripted expert into an HDF5 file (Isaac Lab's recorder layout).

Legend: E envs, T steps of an episode. Episodes run in synchronised batches of E envs: all envs reset
together, the expert plays each env's script, and every env's episode ends when its script ends or the
env terminates it (part off the table, blow-up). Each finished episode is appended to the file at once
(crash-safe: an interrupted run keeps every completed demo; rerunning the same command resumes to the
requested count).

Recorded per step (the obs *before* the action): every policy-group term's current frame (the env stacks
the history; the dataset rebuilds it), the tactile image, the critic state, and the action.

DAgger rounds (Ross et al. 2011; ``dagger_policy``): a pre-trained policy acts, per decision of Te steps and env
(the expert's own action with probability ``dagger_beta``), and every step records what the expert would have done
there, so the demos show corrections from the states the policy itself reaches. Measured on peg-in-hole (bc10 + 30
round episodes, 50 evaluation episodes): beta 0.5 -> 0.14, beta 0 -> 0.00, against 0.20 without: the scripted
expert runs on its clock, so a late policy's labels say "lift" beside an open hand (README).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..utils.errors import UserError


ATTEMPTS_PER_DEMO = 4
"""Episodes tried per wanted demo (plus one batch) before collection gives up: the expert's success is >= 0.9 on
every task, so running out means the expert or the env is broken, not unlucky."""


@dataclass
class CollectResult:
    path: Path
    demos_in_file: int
    episodes_run: int
    successes: int
    seconds: float

    @property
    def success_rate(self) -> float:
        return self.successes / max(self.episodes_run, 1)


def _current_frames(obs) -> dict:
    """Flatten the env's observation groups into per-step arrays keyed by dataset path.

    The policy group's terms carry a history axis (E, To, ...) when the env stacks history; the newest frame
    is recorded. A flat (concatenated) policy group is skipped: its joints are recorded from the critic state.
    """
    import torch

    frames: dict[str, torch.Tensor] = {}
    policy = obs.get("policy")
    if isinstance(policy, dict) or hasattr(policy, "keys"):
        for key in policy.keys():
            value = policy[key]
            frames[f"obs/{key}"] = value[:, -1] if value.dim() >= 3 else value
    tactile = obs.get("tactile")
    if tactile is not None and hasattr(tactile, "keys"):
        for key in tactile.keys():
            frames[f"obs/{key}"] = tactile[key]
    if "critic" in obs:
        frames["states/critic"] = obs["critic"]
    if "obs/joint_pos" not in frames and "critic" in obs:
        frames["obs/joint_pos"] = obs["critic"][:, :16]  # the critic state starts with the 16 joints
    return frames


class PolicyExecutor:
    """What runs in a DAgger round: per decision (Te steps) and env, the expert's action with probability ``beta``,
    else the policy's chunk; the expert's action stays the label either way."""

    def __init__(self, actor, beta: float, generator):
        """
        Args:
            actor: A :class:`~vt_refine.rl.dppo.actor.DiffusionActor` in its evaluation chain (``act``, ``act_steps``).
            beta: Probability [0, 1] that an env's decision executes the expert's own actions.
            generator: torch RNG of the choices and of the policy's initial noise (same seed -> same round).
        """
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must lie in [0, 1], got {beta}")
        self.actor, self.beta, self.generator = actor, float(beta), generator
        self.begin()

    def begin(self) -> None:
        """A new batch of episodes: the next step starts a decision."""
        self._step = self.actor.act_steps
        self._chunk = self._expert_acts = None

    def __call__(self, obs, label):
        """The action to execute (E, Da) given the env's observation groups and the expert's ``label`` (E, Da)."""
        import torch

        if self._step >= self.actor.act_steps:
            num_envs = label.shape[0]
            self._expert_acts = torch.rand(num_envs, generator=self.generator) < self.beta  # (E,)
            if self._expert_acts.all():
                self._chunk = None  # the policy is not asked: a beta = 1 round is the plain expert
            else:
                with torch.no_grad():
                    self._chunk = self.actor.act(_as_tensordict(obs, num_envs), deterministic=True,
                                                 generator=self.generator).actions  # (E, Ta, Da)
            self._step = 0
        step, self._step = self._step, self._step + 1
        if self._chunk is None:
            return label
        expert = self._expert_acts.to(label.device)[:, None]
        return torch.where(expert, label, self._chunk[:, step].to(label.dtype))


def _as_tensordict(obs, num_envs: int):
    """The env's observation groups (dicts of tensors) as the rsl-rl TensorDict a policy actor reads."""
    from tensordict import TensorDict

    return TensorDict(dict(obs), batch_size=[num_envs])  # nested groups become nested TensorDicts


def collect_demos(
    task: str,
    num_demos: int,
    output: str | Path,
    num_envs: int = 8,
    seed: int = 0,
    device: str | None = None,
    keep_failed: bool = False,
    max_episodes: int | None = None,
    progress: bool = True,
    recovery_noise: float = 0.0,
    place_noise: float = 0.0,
    close_dwell: int = 0,
    grasp_noise: float = 0.0,
    dagger_policy=None,
    dagger_beta: float = 0.5,
) -> CollectResult:
    """Collect ``num_demos`` successful (or, with ``keep_failed``, any) expert episodes of ``task``.

    Args:
        max_episodes: Give up after this many episodes (default: ATTEMPTS_PER_DEMO x num_demos + num_envs).
        recovery_noise: ``ScriptedExpertCfg.recovery_noise`` [rad]: executed actions are perturbed, the expert's
            own actions are recorded (recovery demonstrations); 0 = plain demos.
        place_noise: ``ScriptedExpertCfg.place_noise`` [m]: uniform +- per axis on where the left hand sets the
            socket down, so that the demos bring the plug to wherever the socket stands; 0 = one spot.
        close_dwell: ``ScriptedExpertCfg.close_dwell`` [control steps]: the hands wait at their grasp poses before
            closing; 0 = close on arrival.
        grasp_noise: ``ScriptedExpertCfg.grasp_depth_noise`` [m]: uniform +- on how deep each hand reaches in
            before closing, so the parts sit at varied places along the pads; 0 = one spot.
        dagger_policy: A checkpoint (path or :class:`~.checkpoint.Checkpoint`) of ``task``: a DAgger
            round (see the module docstring); every episode is kept (its labels are corrections whatever the
            outcome), so ``num_demos`` counts episodes.
        dagger_beta: Probability that a decision of an env executes the expert instead of the policy.
    """
    import torch
    from tqdm import tqdm

    from ..data.demo_writer import DemoWriter
    from ..utils.device import resolve_device
    from .envs import check_task

    if num_demos < 1:
        raise UserError(f"--num_demos must be at least 1, got {num_demos}")
    check_task(task)
    device = resolve_device(device)
    output = Path(output)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        probe = output.parent / f".{output.name}.writable"
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise UserError(f"cannot write demos to {output}: {error.strerror}; choose a writable --output") from None
    if output.exists():  # a damaged file, or one of another task, is refused before the env is built
        from ..data.hdf5_dataset import DemoReader

        with DemoReader(output) as reader:
            if reader.task != task:
                raise UserError(f"demo file {output} holds demonstrations of task '{reader.task or '<none>'}' but "
                                f"this run collects '{task}'; write to another file or collect the same task")

    env = make_expert_env(task, num_envs, seed, device)
    try:
        expert, rule = make_expert(env, seed, recovery_noise, place_noise, close_dwell, grasp_noise)
        geometry = expert.geometry
        obs, _ = env.reset()
        executor = None
        if dagger_policy is not None:
            executor = _dagger_executor(env, obs, dagger_policy, dagger_beta)
            keep_failed = True
        frames = _current_frames(obs)
        frames["states/expert_phase"] = expert.phase.to(torch.float32)[:, None]
        expected = {key: (tuple(value.shape[1:]), "float32") for key, value in frames.items()}
        expected["actions"] = ((env.action_manager.total_action_dim,), "float32")
        env_args = {"seed": seed, "num_envs": num_envs, "expert": "ScriptedAssemblyExpert",
                    "recovery_noise": float(recovery_noise), "place_noise": float(place_noise),
                    "close_dwell": int(close_dwell), "grasp_noise": float(grasp_noise),
                    "assembly": str(env.cfg.task.assembly), "clearance": float(geometry.clearance)}
        if executor is not None:
            env_args |= {"dagger_policy": str(getattr(dagger_policy, "path", dagger_policy)),
                         "dagger_beta": float(dagger_beta)}
        start = time.perf_counter()
        with DemoWriter(output, task=task, env_args=env_args, expected=expected) as writer:
            remaining = writer.resume_count(num_demos)
            already = writer.num_episodes()
            max_episodes = max_episodes or ATTEMPTS_PER_DEMO * num_demos + num_envs
            runs = successes = 0
            bar = tqdm(total=num_demos, initial=min(already, num_demos), desc=f"demos {task}", unit="demo",
                       disable=not progress)
            batch = 0
            while remaining > 0 and runs < max_episodes:
                # a fresh, seed-determined batch (resume continues the stream); the first keeps the env's first reset
                obs = start_expert_batch(env, expert, seed, already + batch, obs if batch == already == 0 else None)
                if executor is not None:  # each batch's choices and policy noise from the seed alone, as the expert's
                    executor.generator.manual_seed(seed + 7919 * (already + batch))
                episode = run_expert_batch(env, expert, obs, rule, executor)
                batch += 1
                for e in range(num_envs):
                    if remaining <= 0:
                        break
                    runs += 1
                    success = bool(episode["success"][e])
                    successes += success
                    if success or keep_failed:
                        length = int(episode["length"][e])
                        obs_e = {k[4:]: v[:length, e] for k, v in episode["frames"].items() if k.startswith("obs/")}
                        states_e = {k[7:]: v[:length, e] for k, v in episode["frames"].items() if k.startswith("states/")}
                        writer.append_episode(obs_e, episode["actions"][:length, e], states=states_e, success=success,
                                              seed=seed, extra_attrs={"batch": already + batch, "env": e})
                        remaining -= 1
                        bar.update(1)
                    bar.set_postfix(success_rate=f"{successes / runs:.2f}", episodes=runs)
            bar.close()
            in_file = writer.num_episodes()
        if remaining > 0:
            raise UserError(f"only {in_file} of {num_demos} demos after {runs} episodes (expert success "
                            f"{successes}/{runs}); the file keeps them, rerun to continue or pass --keep_failed")
        return CollectResult(output, in_file, runs, successes, time.perf_counter() - start)
    finally:
        env.close()


def _dagger_executor(env, obs, checkpoint, beta: float) -> PolicyExecutor:
    """The :class:`PolicyExecutor` of a DAgger round: ``checkpoint``'s evaluation chain on ``env`` (its generator is
    seeded per batch by the caller)."""
    import torch

    from .checkpoint import Checkpoint

    if not isinstance(checkpoint, Checkpoint):
        checkpoint = Checkpoint.open(checkpoint)
    actor = checkpoint.eval_actor(_as_tensordict(obs, env.num_envs), env.action_manager.total_action_dim,
                                  str(env.device))
    return PolicyExecutor(actor, beta, torch.Generator())


def make_expert_env(task: str, num_envs: int, seed: int, device: str | None, overrides=()):
    """The task's env as collection runs it: no termination on success, so the release is recorded too and
    success is judged when the expert's script ends."""
    from .envs import make_env

    def let_the_expert_release(cfg):
        cfg.task.terminate_on_success = False

    return make_env(task, num_envs=num_envs, device=device, seed=seed, overrides=overrides,
                    cfg_hook=let_the_expert_release)


def make_expert(env, seed: int, recovery_noise: float = 0.0, place_noise: float = 0.0, close_dwell: int = 0,
                grasp_noise: float = 0.0):
    """The scripted expert of ``env``'s assembly and the env's success rule. ``recovery_noise`` [rad] perturbs the
    executed actions (recovery demos), ``place_noise`` [m] varies the socket's set-down spot, ``close_dwell``
    [steps] makes the hands wait before closing, ``grasp_noise`` [m] varies how deep the hands reach in
    (ScriptedExpertCfg)."""
    from ..expert.scripted_expert import ScriptedAssemblyExpert, ScriptedExpertCfg
    from ..tasks.assembly.geometry import assembly_geometry

    geometry = assembly_geometry(env.cfg.task)
    cfg = ScriptedExpertCfg.for_assembly(geometry.spec.name)
    cfg.recovery_noise = float(recovery_noise)
    cfg.place_noise = float(place_noise)
    cfg.close_dwell = int(close_dwell)
    cfg.grasp_depth_noise = float(grasp_noise)
    return ScriptedAssemblyExpert(env, geometry, cfg=cfg, seed=seed), env.cfg.rewards.success.params["rule"]


def start_expert_batch(env, expert, seed: int, index: int, obs=None):
    """Reset all envs for batch ``index`` of the stream seeded by ``seed`` (unless ``obs``, the observation of a
    reset already made, is given) and restart the expert's script; returns the observation."""
    if obs is None:
        obs, _ = env.reset(seed=seed + 1000 * index)
    expert.generator.manual_seed(seed + 7919 * index)
    expert.reset()
    return obs


def expert_success(task: str, episodes: int, num_envs: int, seed: int, device: str | None, overrides=(),
                   recovery_noise: float = 0.0) -> dict:
    """The expert's success rate on ``task`` over ``episodes`` episodes, judged as collection judges it, without
    writing a file; with the 95 % Wilson interval."""
    import sys

    from .evaluate import wilson_interval

    start = time.perf_counter()
    env = make_expert_env(task, num_envs, seed, device, overrides)
    try:
        expert, rule = make_expert(env, seed, recovery_noise)
        successes = runs = batch = 0
        while runs < episodes:
            result = run_expert_batch(env, expert, start_expert_batch(env, expert, seed, batch), rule)
            take = min(num_envs, episodes - runs)
            successes += int(result["success"][:take].sum())
            runs += take
            batch += 1
            print(f"[expert] {task}: {successes}/{runs}", file=sys.stderr, flush=True)
    finally:
        env.close()
    low, high = wilson_interval(successes, runs)
    return {"task": task, "recovery_noise": recovery_noise, "episodes": runs, "successes": successes,
            "success_rate": round(successes / runs, 4), "ci95": [round(low, 4), round(high, 4)],
            "seconds": round(time.perf_counter() - start, 1)}


def run_expert_batch(env, expert, obs, rule, executor: PolicyExecutor | None = None) -> dict:
    """Play one synchronised batch of the expert; returns per-step frames/actions (T, E, ...), lengths and success
    (E,), success judged by ``rule`` on the step each env's script finishes. The actions are the expert's; what
    runs is ``executor(obs, action)`` (a DAgger round) or the expert's, perturbed for recovery demos."""
    import torch

    from ..tasks.assembly.mdp.success import assembly_success

    num_envs = env.num_envs
    max_steps = int(env.max_episode_length)
    frames_steps, action_steps = [], []
    alive = torch.ones(num_envs, dtype=torch.bool, device=env.device)
    length = torch.zeros(num_envs, dtype=torch.long, device=env.device)
    success = torch.zeros(num_envs, dtype=torch.bool, device=env.device)
    if executor is not None:
        executor.begin()
    for _ in range(max_steps):
        frames = _current_frames(obs)
        frames["states/expert_phase"] = expert.phase.to(torch.float32)[:, None]  # where the script was (diagnostics)
        action = expert.act()
        frames_steps.append({k: v.detach().to("cpu", torch.float32).clone() for k, v in frames.items()})
        action_steps.append(action.detach().to("cpu", torch.float32).clone())  # the label: the expert's own action
        executed = executor(obs, action) if executor is not None else expert.perturb(action)  # noisy: recovery demos
        obs, _, terminated, truncated, _ = env.step(executed)
        length += alive.long()
        ended_by_env = (terminated | truncated) & alive
        finished = expert.done & alive
        # judged on the step the script finishes (the env has not reset it: no termination on success here)
        success |= finished & assembly_success(env, rule)
        alive &= ~(ended_by_env | finished)
        if not bool(alive.any()):
            break
    keys = frames_steps[0].keys()
    return {
        "frames": {k: torch.stack([f[k] for f in frames_steps]).numpy() for k in keys},
        "actions": torch.stack(action_steps).numpy(),
        "length": length.cpu().numpy(),
        "success": success.cpu().numpy(),
    }


__all__ = ["collect_demos", "CollectResult", "PolicyExecutor", "expert_success", "make_expert", "make_expert_env",
           "run_expert_batch", "start_expert_batch"]
