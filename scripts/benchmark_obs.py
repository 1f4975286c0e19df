#!/usr/bin/env python
"""Cost of the point-cloud observation per env step, camera vs mesh source; print JSON.

    python scripts/benchmark_obs.py [--num_envs 16] [--steps 20] [--sources camera mesh] [--resolutions 96x72]

Each (source, resolution) runs in its own process (one simulation per process). The scripted expert drives the
env (grasping and lifting, so the grippers and parts are in view). Reported per env step (all envs together):
``step_ms`` the whole env step, ``cloud_ms`` the policy's point-cloud term (for the camera source including the
render, which happens lazily when the term reads the depth image) without the tactile sensor's own update (which
the term triggers too; reported as ``tactile_sensor_ms``), ``render_ms`` the render alone, ``points_ms`` the rest
(unprojection or mesh transforms, crop, subsampling, noise, merging), and ``cloud_share`` = cloud_ms / step_ms.
Timings on a shared machine drift: compare runs of one invocation.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def _measure(task: str, source: str, resolution: str, num_envs: int, steps: int, warmup: int, device: str | None):
    import torch

    torch.set_num_threads(1)
    from vt_refine.app.envs import make_env
    from vt_refine.expert import run_expert, start_expert

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--task", default="VTRefine-PegInHole-Aloha")
    parser.add_argument("--num_envs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=40, help="expert steps before timing (parts grasped)")
    parser.add_argument("--sources", nargs="+", default=["camera", "mesh"], choices=["camera", "mesh"])
    parser.add_argument("--resolutions", nargs="+", default=["96x72"], help="camera WxH to time")
    parser.add_argument("--device", default=None)
    parser.add_argument("--child", nargs=2, metavar=("SOURCE", "RESOLUTION"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        result = _measure(args.task, args.child[0], args.child[1], args.num_envs, args.steps, args.warmup, args.device)
        print("RESULT " + json.dumps(result))
        return 0
    runs = [(s, r) for s in args.sources for r in (args.resolutions if s == "camera" else args.resolutions[:1])]
    results = []
    for source, resolution in runs:
        cmd = [sys.executable, __file__, "--task", args.task, "--num_envs", str(args.num_envs), "--steps",
               str(args.steps), "--warmup", str(args.warmup), "--child", source, resolution]
        if args.device:
            cmd += ["--device", args.device]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            print(proc.stdout[-2000:] + proc.stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"benchmark run {source} {resolution} failed (exit {proc.returncode})")
        results.append(json.loads(lines[-1][len("RESULT "):]))
    print(json.dumps({"task": args.task, "device": args.device or "default", "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
