"""Peak memory of the quick pipeline's stages on CPU, and whether fine-tuning grows memory over iterations.

Each stage runs in its own process (as the pipeline's commands do), so its peak resident set size (RSS) is its
own: collect -> pre-train (VT) -> evaluate -> DPPO fine-tune. During fine-tuning the RSS is sampled after every
DPPO update; the run passes when the RSS after the last iteration is within 10% of the peak reached by
iteration 2 (the first iterations allocate the rollout storage and the optimiser state, later ones must not
add to it).

    python scripts/benchmark_memory.py                      # small settings, ~10 min on 2 CPU cores
    python scripts/benchmark_memory.py --iterations 20 --num_envs 8 --output memory.json

Prints one JSON document (and writes it with --output); exit code 1 when fine-tuning grows beyond the 10%.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASK = "VTRefine-PegInHole-Aloha"
GROWTH_LIMIT = 0.10  # allowed RSS growth from the iteration-2 peak to the end of fine-tuning (fraction)


def rss_mb() -> float:
    """Current resident set size of this process [MiB]."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    """Peak resident set size of this process so far [MiB] (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------------------------- child side
def child(stage: str, args: argparse.Namespace) -> dict:
    from vt_refine.app.cli import main

    start = time.perf_counter()
    record: dict = {"stage": stage}
    if stage == "finetune":  # sample the RSS after each DPPO update
        from vt_refine.rl.dppo import algorithm

        per_iteration: list[float] = []
        update = algorithm.DPPO.update

        def update_and_measure(self):
            out = update(self)
            per_iteration.append(round(rss_mb(), 1))
            return out

        algorithm.DPPO.update = update_and_measure
        record["rss_mb_per_iteration"] = per_iteration
    argv = {
        "collect": ["collect", "--task", TASK, "--num_demos", str(args.num_demos), "--num_envs", str(args.num_envs),
                    "--output", str(args.work / "demos.hdf5"), "--device", "cpu", "--keep_failed"],
        "pretrain": ["pretrain", "--task", TASK, "--dataset", str(args.work / "demos.hdf5"), "--profile", "quick",
                     "--steps", str(args.pretrain_steps), "--output", str(args.work / "pretrain"), "--device", "cpu"],
        "evaluate": ["evaluate", "--task", TASK, "--checkpoint", str(args.work / "pretrain/checkpoints/final.pt"),
                     "--num_episodes", str(args.num_envs), "--num_envs", str(args.num_envs), "--device", "cpu"],
        "finetune": ["finetune", "--task", TASK, "--checkpoint", str(args.work / "pretrain/checkpoints/final.pt"),
                     "--num_envs", str(args.num_envs), "--max_iterations", str(args.iterations), "--profile",
                     str(args.work / "profile.yaml"), "--output", str(args.work / "finetune"), "--device", "cpu"],
    }[stage]
    code = main(argv)
    record.update(exit_code=code, peak_rss_mb=round(peak_mb(), 1), seconds=round(time.perf_counter() - start, 1))
    return record


# -------------------------------------------------------------------------------------------- parent side
def finetune_profile(path: Path, steps_per_env: int) -> None:
    """The quick profile with fewer env steps per iteration (memory, not learning, is measured here)."""
    import yaml

    from vt_refine.app.profile import Profile

    raw = yaml.safe_load(Profile.load("quick").path.read_text())
    raw["finetune"]["num_steps_per_env"] = steps_per_env
    raw["finetune"]["save_interval"] = 1000  # no checkpoint files in the way of the measurement
    path.write_text(yaml.safe_dump(raw))


def verdict(per_iteration: list[float]) -> dict:
    if len(per_iteration) < 3:
        return {"growth_after_iteration_2": None, "ok": False, "why": "fewer than 3 iterations measured"}
    reference = max(per_iteration[:2])
    growth = per_iteration[-1] / reference - 1
    return {"iteration_2_peak_mb": reference, "last_iteration_mb": per_iteration[-1],
            "growth_after_iteration_2": round(growth, 4), "limit": GROWTH_LIMIT, "ok": growth <= GROWTH_LIMIT}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20, help="DPPO iterations of the fine-tuning stage")
    parser.add_argument("--num_envs", type=int, default=4, help="envs of every stage")
    parser.add_argument("--num_demos", type=int, default=2, help="demos collected")
    parser.add_argument("--pretrain_steps", type=int, default=100, help="pre-training steps (quick profile)")
    parser.add_argument("--steps_per_env", type=int, default=16, help="env steps per env per DPPO iteration")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("MEMORY " + json.dumps(child(args.child, args)), flush=True)
        return 0

    with tempfile.TemporaryDirectory(prefix="vt_refine_memory_") as tmp:
        args.work = args.work or Path(tmp)
        args.work.mkdir(parents=True, exist_ok=True)
        finetune_profile(args.work / "profile.yaml", args.steps_per_env)
        stages = []
        for stage in ("collect", "pretrain", "evaluate", "finetune"):
            cmd = [sys.executable, __file__, "--child", stage, "--work", str(args.work), "--iterations",
                   str(args.iterations), "--num_envs", str(args.num_envs), "--num_demos", str(args.num_demos),
                   "--pretrain_steps", str(args.pretrain_steps), "--steps_per_env", str(args.steps_per_env)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            lines = [line for line in out.stdout.splitlines() if line.startswith("MEMORY ")]
            if out.returncode != 0 or not lines:
                print(out.stdout[-3000:] + out.stderr[-3000:], file=sys.stderr)
                print(f"stage {stage} failed (exit code {out.returncode})", file=sys.stderr)
                return 2
            stages.append(json.loads(lines[-1][len("MEMORY "):]))
            print(f"[memory] {stage}: peak {stages[-1]['peak_rss_mb']} MiB in {stages[-1]['seconds']} s",
                  file=sys.stderr, flush=True)
    result = {"task": TASK, "device": "cpu", "num_envs": args.num_envs, "stages": stages,
              "finetune_growth": verdict(stages[-1].get("rss_mb_per_iteration", []))}
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text)
    return 0 if result["finetune_growth"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
