"""One scripted episode on a task: the twin, the parts, the expert and the tactile pads at work.

Writes ``<output>/demo/<task>/<timestamp>/`` with ``report.md``, ``results.json`` and a PNG of the four
pads' readings at the moment of the strongest touch.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from ..utils.atomic import write_json_atomic


def run_demo(task: str, num_envs: int, device: str | None, seed: int, output: str) -> Path:
    import torch
    from tqdm import tqdm

    from .envs import check_task, make_env
    from ..expert import ScriptedAssemblyExpert
    from ..tasks.assembly.geometry import assembly_geometry
    from ..tasks.assembly.mdp.success import assembly_success
    from ..utils.device import resolve_device

    check_task(task)  # bad input refused before any folder or simulation is made
    device = resolve_device(device)
    out_dir = Path(output) / "demo" / task / datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)

    def keep_going(cfg):  # let the expert finish its release instead of stopping at the first assembled step
        cfg.task.terminate_on_success = False

    start = time.perf_counter()
    env = make_env(task, num_envs=num_envs, device=device, seed=seed, cfg_hook=keep_going)
    build_s = time.perf_counter() - start
    try:
        geometry = assembly_geometry(env.cfg.task)
        env.reset()
        expert = ScriptedAssemblyExpert(env, geometry, seed=seed)
        expert.reset()
        sensor = env.scene.sensors["tactile"]
        ever = torch.zeros(num_envs, dtype=torch.bool, device=env.device)
        best_force, best_frame = -1.0, None
        max_steps = int(env.max_episode_length)
        t0 = time.perf_counter()
        steps = 0
        with tqdm(total=max_steps, desc=f"{task} scripted episode", unit="step") as bar:
            while steps < max_steps and not bool(expert.done.all()):
                env.step(expert.act())
                steps += 1
                ever |= assembly_success(env, env.cfg.rewards.success.params["rule"])
                force = sensor.data.force[0]
                if float(force.sum()) > best_force:
                    best_force, best_frame = float(force.sum()), force.detach().cpu().clone()
                bar.set_postfix(assembled=f"{int(ever.sum())}/{num_envs}")
                bar.update(1)
        sim_s = time.perf_counter() - t0
        results = {
            "task": task,
            "num_envs": num_envs,
            "device": str(env.device),
            "seed": seed,
            "control_steps": steps,
            "assembled_envs": int(ever.sum()),
            "success_rate": float(ever.float().mean()),
            "build_seconds": round(build_s, 1),
            "episode_seconds": round(sim_s, 1),
            "env_steps_per_s": round(num_envs * steps / sim_s, 1),
            "max_total_taxel_force_env0_N": round(best_force, 4),
        }
    finally:
        env.close()
    if best_frame is not None:
        from .viz import save_tactile_heatmaps

        save_tactile_heatmaps(best_frame, out_dir / "tactile_peak.png", title=f"{task}: pads at the strongest touch")
    write_json_atomic(out_dir / "results.json", results)
    (out_dir / "report.md").write_text(
        f"# vt_refine demo: {task}\n\n"
        f"Scripted bimanual expert, one episode, {num_envs} envs on {results['device']} (seed {seed}).\n\n"
        f"| metric | value |\n|---|---|\n"
        + "".join(f"| {k} | {v} |\n" for k, v in results.items())
        + "\n![tactile](tactile_peak.png)\n"
    )
    print(f"[vt-refine demo] {results['assembled_envs']}/{num_envs} assembled in {steps} steps; "
          f"{results['env_steps_per_s']} env-steps/s; report: {out_dir / 'report.md'}")
    return out_dir
