"""Environment throughput benchmark: env-steps per second for several num_envs on one device.

Each setting runs in its own process (Isaac Lab keeps one simulation per process), drives the task with
the scripted expert (so contacts, grasps and the tactile sensor cost what they cost in demos) and times
``--steps`` control steps after a warm-up. Prints one JSON document.

With ``floor=True`` (``vt-refine benchmark --floor``) each setting also measures, in the same process and on the
same scene (USD, solver, substeps, contact buffers), the physics floor -- the simulation stepped alone, with the
robot's targets held, ``decimation`` physics steps per control step -- and splits the env step into its parts:
physics, writing the actions, the scene's state read-back, the tactile sensor, the camera and point cloud, the
other observation terms, rewards and terminations, and resets. The ratio env / floor says how much of the
simulator's own speed the task keeps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from ..utils.atomic import write_json_atomic
from ..utils.errors import UserError


def measure_env_throughput(task: str, num_envs: int, device: str | None, steps: int, seed: int = 0,
                           warmup: int = 5) -> dict:
    """Time ``steps`` control steps of ``task`` with ``num_envs`` envs driven by the scripted expert."""
    import torch

    from ..expert import run_expert, start_expert
    from .envs import make_env

    env = make_env(task, num_envs=num_envs, device=device, seed=seed)
    try:
        _, expert = start_expert(env, seed=seed, warmup_steps=warmup)
        if env.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        act_time = run_expert(env, expert, steps)
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


class EnvStepTimers:
    """Wall time [s] per part of the env step, by wrapping methods of live objects. Each part keeps its own time
    only: a wrapped call inside another (a sensor updated lazily when an observation or reward term reads it) is
    taken out of the enclosing part, so the parts add up to the step without double counting."""

    def __init__(self, sync):
        self.total: dict[str, float] = {}
        self._sync = sync
        self._children: list[float] = []  # per open call, the time spent in wrapped calls inside it

    def wrap(self, obj, name: str, label: str) -> None:
        inner = getattr(obj, name)

        def timed(*args, **kwargs):
            self._sync()
            t0 = time.perf_counter()
            self._children.append(0.0)
            try:
                return inner(*args, **kwargs)
            finally:
                self._sync()
                elapsed = time.perf_counter() - t0
                nested = self._children.pop()
                self.total[label] = self.total.get(label, 0.0) + elapsed - nested
                if self._children:
                    self._children[-1] += elapsed

        setattr(obj, name, timed)

    def wrap_env(self, env) -> None:
        """Time the parts of a manager-based env's step: physics, action, rewards/terminations, resets,
        observations, the tactile sensor and the camera (when the scene has them), the scene update."""
        self.wrap(env.sim, "step", "physics")
        self.wrap(env.action_manager, "process_action", "action")
        self.wrap(env.action_manager, "apply_action", "action")
        self.wrap(env.scene, "write_data_to_sim", "action")
        self.wrap(env.termination_manager, "compute", "rewards_terminations")
        self.wrap(env.reward_manager, "compute", "rewards_terminations")
        self.wrap(env, "_reset_idx", "resets")
        self.wrap(env.observation_manager, "compute", "observations")
        sensors = env.scene.sensors
        if "tactile" in sensors:
            self.wrap(sensors["tactile"], "_update_buffers_impl", "tactile_sensor")
        if "camera" in sensors:
            self.wrap(sensors["camera"], "_update_buffers_impl", "camera")
        self.wrap(env.scene, "update", "scene_update")


def measure_floor_and_split(task: str, num_envs: int, device: str | None, steps: int, seed: int = 0,
                            warmup: int = 5) -> dict:
    """Physics floor and env-step split of ``task`` at ``num_envs`` (see the module docstring); times in ms per
    control step, rates in env-steps/s."""
    import torch

    from ..expert import start_expert
    from .envs import make_env

    env = make_env(task, num_envs=num_envs, device=device, seed=seed)
    cuda = str(env.device).startswith("cuda")

    def sync():
        if cuda:
            torch.cuda.synchronize()

    try:
        _, expert = start_expert(env, seed=seed)
        timers = EnvStepTimers(sync)
        timers.wrap_env(env)
        for _ in range(warmup):
            env.step(expert.act())
        timers.total.clear()
        env_s = 0.0
        for _ in range(steps):  # the expert acts (contacts and grasps as in demos); only env.step is timed
            action = expert.act()
            sync()
            t0 = time.perf_counter()
            env.step(action)
            sync()
            env_s += time.perf_counter() - t0
        parts = dict(timers.total)  # own times: "observations" excludes the sensors its terms update lazily
        parts["other"] = env_s - sum(v for k, v in parts.items())
        # the floor: the same simulation stepped alone, decimation physics steps per control step
        decimation = env.cfg.decimation
        sync()
        start = time.perf_counter()
        for _ in range(steps * decimation):
            env.sim.step(render=False)
        sync()
        floor_s = time.perf_counter() - start
        per_step = {k: round(1000 * v / steps, 2) for k, v in parts.items()}
        return {
            "num_envs": num_envs,
            "device": str(env.device),
            "control_steps": steps,
            "env_steps_per_s": round(num_envs * steps / env_s, 2),
            "floor_env_steps_per_s": round(num_envs * steps / floor_s, 2),
            "ratio_env_to_floor": round(floor_s / env_s, 3),
            "floor_ms_per_control_step": round(1000 * floor_s / steps, 2),
            "env_ms_per_control_step": round(1000 * env_s / steps, 2),
            "split_ms_per_control_step": per_step,
        }
    finally:
        env.close()


def run_env_benchmark(task: str, num_envs_list: list[int], device: str | None, steps: int, seed: int = 0,
                      output: str | None = None, floor: bool = False) -> dict:
    """Run :func:`measure_env_throughput` for each num_envs in a fresh process; print and return JSON."""
    from .envs import check_task
    from ..utils.device import resolve_device

    check_task(task)
    device = resolve_device(device)
    results = []
    for num_envs in num_envs_list:
        cmd = [sys.executable, "-m", "vt_refine.app.benchmark", task, str(num_envs), device, str(steps), str(seed),
               "floor" if floor else "throughput"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("{")), None)
        if proc.returncode != 0 or line is None:
            raise UserError(f"benchmark with num_envs={num_envs} failed (exit {proc.returncode}):\n"
                            f"{proc.stderr[-2000:]}")
        results.append(json.loads(line))
        row = results[-1]
        floor_text = f" (floor {row['floor_env_steps_per_s']}, ratio {row['ratio_env_to_floor']})" if floor else ""
        print(f"[vt-refine benchmark] num_envs={num_envs}: {row['env_steps_per_s']} env-steps/s{floor_text}",
              file=sys.stderr)
    report = {"task": task, "device": device, "results": results}
    print(json.dumps(report, indent=2))
    if output:
        write_json_atomic(output, report)
    return report


if __name__ == "__main__":  # one setting, in its own process
    _task, _num_envs, _device, _steps, _seed, _mode = sys.argv[1:7]
    _measure = measure_floor_and_split if _mode == "floor" else measure_env_throughput
    print(json.dumps(_measure(_task, int(_num_envs), _device, int(_steps), int(_seed))))
