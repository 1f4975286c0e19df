"""Evaluate a diffusion policy in the twin: N episodes on fixed seeds, success rate with a 95% interval.

Pre-trained checkpoints (``pretrain``'s ``final.pt``) and fine-tuned ones (DPPO's ``model_<it>.pt``) are
evaluated by the same code: both become a :class:`~vt_refine.rl.dppo.actor.DiffusionActor` (frozen early
denoising steps + the last K steps, which for a pre-trained policy are the same weights) run in its
deterministic mode, one chunk per decision, its first Te actions executed.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..utils.atomic import write_json_atomic
from ..utils.errors import UserError
from .checkpoint import Checkpoint


@dataclass
class EvalResult:
    task: str
    checkpoint: str
    kind: str  # "pretrained" | "finetuned"
    episodes: int
    successes: int
    success_rate: float
    ci95: tuple[float, float]
    mean_return: float
    seed: int
    num_envs: int
    device: str
    seconds: float
    per_batch: list[float] = field(default_factory=list)
    act_steps: int = 0
    """Te, chunk steps executed per decision."""
    outcomes: dict[str, int] = field(default_factory=dict)
    """Episodes per outcome (assembled, not_grasped, dropped, not_aligned, aligned_not_inserted): where the failed
    ones stopped."""

    def to_dict(self) -> dict:
        return asdict(self)


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion (sound at 0 and n, unlike the normal one)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, center - half), min(1.0, center + half))


def evaluate_policy(
    task: str,
    checkpoint: str | Path | Checkpoint,
    num_episodes: int = 16,
    num_envs: int = 8,
    seed: int = 1000,
    device: str | None = None,
    output: str | Path | None = None,
    sampler: str | None = None,
    progress: bool = True,
    env=None,
    act_steps: int | None = None,
) -> EvalResult:
    """Success rate of ``checkpoint`` over ``num_episodes`` episodes of ``task`` (batches of ``num_envs``, batch b
    reset with seed ``seed + b``, so two checkpoints evaluated with the same seed see the same initial states).

    Args:
        act_steps: Te, chunk steps executed per decision (default: the checkpoint's).
        env: An already built env of ``task`` to use (e.g. inside a visualiser launch); it is not closed here.
    """
    import torch
    from tqdm import tqdm

    from isaaclab_rl.rsl_rl import RslRlVecEnvWrapper

    from .envs import check_task, make_env
    from ..tasks.assembly.mdp.rewards import OUTCOMES
    from ..utils.device import resolve_device

    if num_episodes < 1:
        raise UserError(f"--num_episodes must be at least 1, got {num_episodes}")
    check_task(task)
    if env is None:
        device = resolve_device(device)
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = Checkpoint.open(checkpoint)
    checkpoint.check_task(task)  # a missing/corrupt/other-task file fails before the env is built
    own_env = env is None
    if own_env:
        env = make_env(task, num_envs=min(num_envs, num_episodes), device=device, seed=seed)
    num_envs = env.num_envs
    start = time.perf_counter()
    try:
        vec = RslRlVecEnvWrapper(env)
        actor = checkpoint.eval_actor(vec.get_observations(), vec.num_actions, str(env.device), sampler=sampler,
                                      act_steps=act_steps)
        batches = -(-num_episodes // num_envs)
        successes = 0
        returns = []
        per_batch = []
        done = 0
        outcome_term = _outcome_term(env)
        outcomes = torch.zeros(len(OUTCOMES), dtype=torch.long)
        generator = torch.Generator(device=str(env.device)).manual_seed(seed)
        for b in tqdm(range(batches), desc=f"evaluate {checkpoint.path.name} on {task}", unit="batch",
                      disable=not progress):
            env.reset(seed=seed + b)
            outcome_term.start_recording()
            take = min(num_envs, num_episodes - done)
            with torch.no_grad():
                stats = _first_episode_successes(actor, vec, generator)
            outcomes += torch.bincount(outcome_term.first_outcome[:take].cpu().clamp(min=0), minlength=len(OUTCOMES))
            wins = stats["success"][:take]
            successes += int(wins.sum())
            returns.extend(stats["returns"][:take].tolist())
            per_batch.append(float(wins.float().mean()))
            done += take
        low, high = wilson_interval(successes, num_episodes)
        result = EvalResult(task, str(checkpoint.path), checkpoint.kind, num_episodes, successes, successes / num_episodes,
                            (round(low, 4), round(high, 4)), float(sum(returns) / max(len(returns), 1)), seed,
                            num_envs, str(env.device), round(time.perf_counter() - start, 1), per_batch,
                            actor.act_steps, dict(zip(OUTCOMES, outcomes.tolist())))
    finally:
        if own_env:
            env.close()
    if output is not None:
        write_json_atomic(output, result.to_dict())
    return result


def _outcome_term(env):
    """The env's episode-outcome metric term (see ``mdp.assembly_outcome_metric``)."""
    term = env.reward_manager.get_term_cfg("outcome").func
    if not hasattr(term, "start_recording"):
        raise RuntimeError("the task's reward 'outcome' is not an assembly_outcome_metric; cannot tell where episodes end")
    return term


def _first_episode_successes(actor, vec, generator) -> dict:
    """Per-env success and return of the first episode after a reset, one chunk per decision."""
    from ..rl.dppo.multistep import SUCCESS_RETURN_THRESHOLD, first_episode_returns
    from .envs import hold_last_joints

    returns = first_episode_returns(actor, vec, deterministic=True, hold_action_fn=hold_last_joints(actor, vec),
                                    generator=generator)
    return {"success": (returns >= SUCCESS_RETURN_THRESHOLD).cpu(), "returns": returns.cpu()}
