"""Build the project's Isaac Lab environments programmatically (used by every vt-refine command).

``isaaclab train|play`` build the same environments from the same registrations; this module adds
what a user of the project's own commands expects: CPU by default without a GPU, a clear error for an
unknown task or a missing GPU, and one place that sets num_envs / seed / overrides.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..utils.device import resolve_device
from ..utils.errors import UserError

TASK_PREFIX = "VTRefine-"


def known_tasks() -> list[str]:
    """Ids of the vt_refine tasks, sorted (from a light module: no Isaac Lab import)."""
    from ..task_ids import ALL_TASK_IDS

    return list(ALL_TASK_IDS)


def check_task(task: str) -> str:
    """Return ``task`` if registered, else raise a UserError that lists the known tasks."""
    tasks = known_tasks()
    if task not in tasks:
        import difflib

        close = difflib.get_close_matches(task, tasks, n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise UserError(f"unknown task {task!r}.{hint} Known tasks: {', '.join(tasks)}")
    return task


def make_env_cfg(
    task: str,
    num_envs: int | None = None,
    device: str | None = None,
    seed: int | None = None,
    overrides: Sequence[str] = (),
):
    """Resolve the registered env cfg of ``task`` with presets and overrides applied."""
    check_task(task)
    device = resolve_device(device)
    if num_envs is not None and num_envs < 1:
        raise UserError(f"--num_envs must be at least 1, got {num_envs}")
    from isaaclab_tasks.utils.parse_cfg import parse_env_cfg

    import vt_refine.tasks  # noqa: F401  (registers the tasks with gymnasium)

    cfg = parse_env_cfg(task, device=device, num_envs=num_envs, overrides=list(overrides))
    if seed is not None:
        cfg.seed = int(seed)
    return cfg


def make_env(task: str, cfg_hook: Callable | None = None, **settings):
    """Create the ManagerBasedRLEnv of ``task`` (kit-less on Newton by default); ``settings`` are those of
    :func:`make_env_cfg` (num_envs, device, seed, overrides).

    Args:
        cfg_hook: Called with the resolved env cfg before the env is built (to tweak it in code, e.g. its
            ``task`` fields: the parts and the success rule are applied from ``cfg.task`` after the hook).
    """
    cfg = make_env_cfg(task, **settings)
    if cfg_hook is not None:
        cfg_hook(cfg)
    from ..tasks.assembly.assembly_env import make_assembly_env

    return make_assembly_env(cfg)


def hold_last_joints(actor, vec):
    """Action of an env whose episode ended mid-decision: hold its last measured joints, mapped through the
    joint limits into the task's [-1, 1] action space (the evaluation's rule, shared by its diagnostics).

    Args:
        actor: A :class:`~vt_refine.rl.dppo.actor.DiffusionActor` (reads the raw ``joint_pos`` history).
        vec: The rsl-rl ``VecEnv`` it acts in.
    """
    import torch

    from ..assets.aloha import joint_to_action_map

    scale, offset = (torch.tensor(row, dtype=torch.float32, device=vec.device) for row in joint_to_action_map())

    def fn(obs):
        return (scale * actor.raw_policy_obs(obs)["joint_pos"][:, -1] + offset).clamp(-1, 1)

    return fn
