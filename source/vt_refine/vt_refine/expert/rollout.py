"""Starting the scripted expert on a built env: the one place the commands, benchmarks and scripts do it."""

from __future__ import annotations

from .scripted_expert import ScriptedAssemblyExpert, ScriptedExpertCfg


def start_expert(env, seed: int = 0, cfg: ScriptedExpertCfg | None = None, warmup_steps: int = 0):
    """Reset ``env`` (an assembly task), start a fresh expert on its parts and let it act ``warmup_steps`` steps.

    Returns:
        (the latest observation dict, the expert).
    """
    from ..tasks.assembly.geometry import assembly_geometry

    obs, _ = env.reset()
    base = getattr(env, "unwrapped", env)
    expert = ScriptedAssemblyExpert(env, assembly_geometry(base.cfg.task), cfg=cfg, seed=seed)
    expert.reset()
    for _ in range(warmup_steps):
        obs, *_ = env.step(expert.act())
    return obs, expert


def run_expert(env, expert, steps: int) -> float:
    """Step ``env`` ``steps`` times with the expert's actions; returns the seconds spent inside the expert (so
    that a benchmark can leave them out of the env's time)."""
    import time

    in_expert = 0.0
    for _ in range(steps):
        t0 = time.perf_counter()
        action = expert.act()
        in_expert += time.perf_counter() - t0
        env.step(action)
    return in_expert
