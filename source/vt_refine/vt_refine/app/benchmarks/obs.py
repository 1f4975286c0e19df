"""Cost of the point-cloud observation per env step, camera vs mesh source.

Each (source, resolution) runs in its own process (one simulation per process). The scripted expert drives the
env (grasping and lifting, so the grippers and parts are in view). Reported per env step (all envs together):
``step_ms`` the whole env step, ``cloud_ms`` the policy's point-cloud term (for the camera source including the
render, which happens lazily when the term reads the depth image) without the tactile sensor's own update (which
the term triggers too; reported as ``tactile_sensor_ms``), ``render_ms`` the render alone, ``points_ms`` the rest
(unprojection or mesh transforms, crop, subsampling, noise, merging), and ``cloud_share`` = cloud_ms / step_ms.
Timings on a shared machine drift: compare runs of one invocation.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from ...utils.errors import UserError


def benchmark_obs(task: str, sources: list[str], resolutions: list[str], num_envs: int, steps: int, warmup: int,
                  device: str | None) -> dict:
    """Run :func:`measure_point_cloud` for each source (the camera at each resolution) in a fresh process."""
    runs = [(s, r) for s in sources for r in (resolutions if s == "camera" else resolutions[:1])]
    results = []
    for source, resolution in runs:
        setting = [task, source, resolution, num_envs, steps, warmup, device]
        proc = subprocess.run([sys.executable, "-m", __name__, json.dumps(setting)], capture_output=True, text=True)
        line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("{")), None)
        if proc.returncode != 0 or line is None:
            raise UserError(f"benchmark run {source} {resolution} failed (exit {proc.returncode}):\n"
                            f"{proc.stderr[-2000:]}")
        results.append(json.loads(line))
    return {"task": task, "device": device or "default", "results": results}


def measure_point_cloud(task: str, source: str, resolution: str, num_envs: int, steps: int, warmup: int,
                        device: str | None) -> dict:
    """One (source, resolution) setting in this process: the env driven by the scripted expert for ``warmup``
    steps, then ``steps`` timed steps with the point-cloud term, the render and the tactile sensor timed apart."""
    import torch

    from ...expert import run_expert, start_expert
    from ..envs import make_env

    torch.set_num_threads(1)

    width, height = (int(v) for v in resolution.split("x"))
    overrides = [f"env.point_cloud.source={source}", f"env.scene.camera.width={width}",
                 f"env.scene.camera.height={height}"]
    env = make_env(task, num_envs=num_envs, device=device, seed=0, overrides=overrides)
    timers = {"cloud": 0.0, "render": 0.0, "tactile": 0.0}

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            timers[name] += time.perf_counter() - start
            return out
        return wrapper

    manager = env.observation_manager
    term_cfg = manager._group_obs_term_cfgs["policy"][manager.active_terms["policy"].index("point_cloud")]
    term = term_cfg.func
    term_cfg.func = _Timed(term, timed("cloud", term.__call__))  # the manager calls term_cfg.func(env, ...)
    camera = env.scene.sensors.get(env.cfg.point_cloud.camera_name)
    if camera is not None:
        camera._update_buffers_impl = timed("render", camera._update_buffers_impl)
    # the tactile sensor updates lazily, i.e. inside the cloud term when it reads the taxel points: time it apart
    tactile = env.scene.sensors["tactile"]
    tactile._update_buffers_impl = timed("tactile", tactile._update_buffers_impl)
    try:
        _, expert = start_expert(env, seed=0, warmup_steps=warmup)
        timers.update(cloud=0.0, render=0.0, tactile=0.0)
        start = time.perf_counter()
        expert_time = run_expert(env, expert, steps)
        total = time.perf_counter() - start - expert_time
        valid = float(term.last_mask.float().mean())
    finally:
        env.close()
    step_ms = 1000 * total / steps
    tactile_ms = 1000 * timers["tactile"] / steps
    cloud_ms = 1000 * timers["cloud"] / steps - tactile_ms  # the taxel model is the tactile sensor's cost, not ours
    render_ms = 1000 * timers["render"] / steps
    return {
        "source": source, "resolution": resolution if source == "camera" else None, "num_envs": num_envs,
        "num_points": env.cfg.point_cloud.num_points, "step_ms": round(step_ms, 2), "cloud_ms": round(cloud_ms, 2),
        "render_ms": round(render_ms, 2), "points_ms": round(cloud_ms - render_ms, 2),
        "tactile_sensor_ms": round(tactile_ms, 2), "cloud_share": round(cloud_ms / step_ms, 3),
        "envs_with_points": valid,
    }


class _Timed:
    """A class term's stand-in that times its calls (attributes, e.g. ``reset``, go to the term)."""

    def __init__(self, term, call):
        self.term, self.call = term, call

    def __call__(self, *args, **kwargs):
        return self.call(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.term, name)




if __name__ == "__main__":  # one setting, in its own process
    print(json.dumps(measure_point_cloud(*json.loads(sys.argv[1]))))
