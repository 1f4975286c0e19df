"""Where a DPPO iteration's time goes: the rollout (env steps, the actor's chunk sampling, the algorithm's
bookkeeping) and the update (PPO epochs), for a pre-trained checkpoint on a task.

The iterations run exactly as ``isaaclab train`` / ``vt-refine finetune`` run them (rsl-rl's runner loop: act ->
env step -> process_env_step, then compute_returns and update), with the profile's fine-tuning settings.
"""

from __future__ import annotations

import sys
import time


def finetune_runner_cfg(profile: str, overrides: list[str]) -> dict:
    """The profile's ``finetune:`` runner settings with ``section.key=value`` overrides (values read as YAML)."""
    import yaml

    from ..profile import Profile

    runner = Profile.load(profile).finetune.runner
    for item in overrides:
        key, _, value = item.partition("=")
        *sections, name = key.split(".")
        node = runner
        for section in sections:
            node = node.setdefault(section, {})
        node[name] = yaml.safe_load(value)
    return runner


def benchmark_finetune(task: str, checkpoint, runner: dict, num_envs: int, iterations: int, device: str) -> dict:
    """Run ``iterations`` DPPO iterations of the pre-trained ``checkpoint`` (path, checked against ``task`` at the
    edge) on ``task`` with the runner settings ``runner`` and time their parts [s]."""
    import tempfile

    import torch

    from isaaclab_rl.rsl_rl import RslRlVecEnvWrapper, create_rsl_rl_runner

    from ..benchmark import EnvStepTimers
    from ..envs import make_env
    from ..finetune import finetune_agent_cfg
    from ..profile import FinetuneSettings

    agent_cfg = finetune_agent_cfg(task, checkpoint, device, 0, FinetuneSettings(runner=runner))
    env = make_env(task, num_envs=num_envs, device=device, seed=0)
    try:
        vec = RslRlVecEnvWrapper(env, clip_actions=agent_cfg.clip_actions)
        alg = create_rsl_rl_runner(vec, agent_cfg, log_dir=tempfile.mkdtemp(prefix="bench_dppo_")).alg
        cuda = str(env.device).startswith("cuda")
        timers = EnvStepTimers(torch.cuda.synchronize if cuda else lambda: None)
        timers.wrap_env(env)  # the env step's split inside the rollout, as `vt-refine benchmark --floor` splits it
        rows = []
        obs = vec.get_observations()
        for _ in range(iterations):
            t = {"actor_sampling": 0.0, "env_step": 0.0, "bookkeeping": 0.0}
            timers.total.clear()
            alg.train_mode()
            start = time.perf_counter()
            with torch.inference_mode():
                for _ in range(int(agent_cfg.num_steps_per_env)):
                    t0 = time.perf_counter()
                    decides = alg._cursor == 0
                    actions = alg.act(obs)
                    t1 = time.perf_counter()
                    obs, rewards, dones, extras = vec.step(actions)
                    t2 = time.perf_counter()
                    alg.process_env_step(obs, rewards, dones, extras)
                    t3 = time.perf_counter()
                    t["actor_sampling" if decides else "bookkeeping"] += t1 - t0
                    t["env_step"] += t2 - t1
                    t["bookkeeping"] += t3 - t2
                alg.compute_returns(obs)
            rollout = time.perf_counter() - start
            t0 = time.perf_counter()
            losses = alg.update()
            update = time.perf_counter() - t0
            total = rollout + update
            steps = int(agent_cfg.num_steps_per_env)
            split = {k: round(1000 * v / steps, 2) for k, v in timers.total.items()}
            split["other"] = round(1000 * (t["env_step"] - sum(timers.total.values())) / steps, 2)
            rows.append({"rollout_s": round(rollout, 2), "update_s": round(update, 2),
                         "update_share": round(update / total, 3), **{k: round(v, 2) for k, v in t.items()},
                         "gradient_steps": losses.get("gradient_steps"),
                         "actor_updated": "surrogate" in losses,
                         "env_steps_per_s": round(vec.num_envs * int(agent_cfg.num_steps_per_env) / total, 1),
                         "env_step_split_ms_per_control_step": split})
            print(f"[benchmark_finetune] {rows[-1]}", file=sys.stderr, flush=True)
    finally:
        env.close()
    return {"task": task, "checkpoint": str(checkpoint), "num_envs": num_envs,
            "num_steps_per_env": int(agent_cfg.num_steps_per_env), "finetune": runner, "iterations": rows}
