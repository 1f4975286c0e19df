"""Environment throughput benchmark: env-steps per second for several num_envs on one device.

Each setting runs in its own process (Isaac Lab keeps one simulation per process), drives the task with
the scripted expert (so contacts, grasps and the tactile sensor cost what they cost in demos) and times
``--steps`` control steps after a warm-up. Prints one JSON document.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from .utils.atomic import write_json_atomic
from .utils.errors import UserError


def measure_env_throughput(task: str, num_envs: int, device: str | None, steps: int, seed: int = 0,
                           warmup: int = 5) -> dict:
    """Time ``steps`` control steps of ``task`` with ``num_envs`` envs driven by the scripted expert."""
    import torch

    from .envs import make_env
    from .expert import ScriptedAssemblyExpert
    from .tasks.assembly.assembly_env_cfg import assembly_geometry

    env = make_env(task, num_envs=num_envs, device=device, seed=seed)
    try:
        env.reset()
        expert = ScriptedAssemblyExpert(env, assembly_geometry(env.cfg.task), seed=seed)
        expert.reset()
        for _ in range(warmup):
            env.step(expert.act())
        if env.device.startswith("cuda"):
            torch.cuda.synchronize()
        act_time = 0.0
        start = time.perf_counter()
        for _ in range(steps):
            t0 = time.perf_counter()
            action = expert.act()
            act_time += time.perf_counter() - t0
            env.step(action)
        if env.device.startswith("cuda"):
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        return {
            "num_envs": num_envs,
            "device": str(env.device),
            "control_steps": steps,
            "seconds": round(elapsed, 3),
            "env_steps_per_s": round(num_envs * steps / elapsed, 2),
            "env_steps_per_s_without_expert": round(num_envs * steps / max(elapsed - act_time, 1e-9), 2),
            "physics_steps_per_s": round(num_envs * steps * env.cfg.decimation / elapsed, 1),
        }
    finally:
        env.close()


def run_env_benchmark(task: str, num_envs_list: list[int], device: str | None, steps: int, seed: int = 0,
                      output: str | None = None) -> dict:
    """Run :func:`measure_env_throughput` for each num_envs in a fresh process; print and return JSON."""
    from .envs import check_task
    from .utils.device import resolve_device

    check_task(task)
    device = resolve_device(device)
    results = []
    for num_envs in num_envs_list:
        cmd = [sys.executable, "-m", "vt_refine.benchmark", task, str(num_envs), device, str(steps), str(seed)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("{")), None)
        if proc.returncode != 0 or line is None:
            raise UserError(f"benchmark with num_envs={num_envs} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        results.append(json.loads(line))
        print(f"[vt-refine benchmark] num_envs={num_envs}: {results[-1]['env_steps_per_s']} env-steps/s", file=sys.stderr)
    report = {"task": task, "device": device, "results": results}
    print(json.dumps(report, indent=2))
    if output:
        write_json_atomic(output, report)
    return report


if __name__ == "__main__":  # one setting, in its own process
    _task, _num_envs, _device, _steps, _seed = sys.argv[1:6]
    print(json.dumps(measure_env_throughput(_task, int(_num_envs), _device, int(_steps), int(_seed))))
