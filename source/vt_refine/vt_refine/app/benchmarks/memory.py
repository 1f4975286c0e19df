"""Peak memory of the quick pipeline's stages on CPU, and whether fine-tuning grows memory over iterations.

Each stage runs in its own process (as the pipeline's commands do), so its peak resident set size (RSS) is its
own: collect -> pre-train (VT) -> evaluate -> DPPO fine-tune. During fine-tuning the RSS is sampled after every
DPPO update; the run passes when the RSS after the last iteration is within ``GROWTH_LIMIT`` of the peak reached
by iteration 2 (the first iterations allocate the rollout storage and the optimiser state, later ones must not
add to it).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ...utils.errors import UserError

TASK = "VTRefine-PegInHole-Aloha"
GROWTH_LIMIT = 0.10
"""Allowed RSS growth from the iteration-2 peak to the end of fine-tuning (fraction)."""
STAGES = ("collect", "pretrain", "evaluate", "finetune")
_PREFIX = "MEMORY "  # marks the stage's record among the libraries' banners on stdout


@dataclass
class MemorySettings:
    """Sizes of the measured run: small, since memory, not learning, is measured."""

    iterations: int = 20  # DPPO iterations of the fine-tuning stage
    num_envs: int = 4  # envs of every stage
    num_demos: int = 2
    pretrain_steps: int = 100  # quick-profile BC steps
    steps_per_env: int = 16  # env steps per env per DPPO iteration


def benchmark_memory(settings: MemorySettings, work: Path | None = None) -> dict:
    """Run the four stages, each in a fresh process, in ``work`` (default: a temporary folder). Returns the
    report; its ``finetune_growth.ok`` says whether fine-tuning kept within the limit. Raises UserError when a
    stage fails."""
    with tempfile.TemporaryDirectory(prefix="vt_refine_memory_") as tmp:
        work = Path(work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        _finetune_profile(work / "profile.yaml", settings.steps_per_env)
        stages = []
        for stage in STAGES:
            cmd = [sys.executable, "-m", __name__, stage, str(work), json.dumps(asdict(settings))]
            out = subprocess.run(cmd, capture_output=True, text=True)
            line = next((ln for ln in reversed(out.stdout.splitlines()) if ln.startswith(_PREFIX)), None)
            if out.returncode != 0 or line is None:
                raise UserError(f"stage {stage} failed (exit code {out.returncode}):\n"
                                f"{out.stdout[-3000:]}{out.stderr[-3000:]}")
            stages.append(json.loads(line[len(_PREFIX):]))
            print(f"[memory] {stage}: peak {stages[-1]['peak_rss_mb']} MiB in {stages[-1]['seconds']} s",
                  file=sys.stderr, flush=True)
    return {"task": TASK, "device": "cpu", "num_envs": settings.num_envs, "stages": stages,
            "finetune_growth": verdict(stages[-1].get("rss_mb_per_iteration", []))}


def verdict(per_iteration: list[float]) -> dict:
    """Growth of the RSS [MiB] sampled after each DPPO update, from the first two iterations' peak to the last."""
    if len(per_iteration) < 3:
        return {"growth_after_iteration_2": None, "ok": False, "why": "fewer than 3 iterations measured"}
    reference = max(per_iteration[:2])
    growth = per_iteration[-1] / reference - 1
    return {"iteration_2_peak_mb": reference, "last_iteration_mb": per_iteration[-1],
            "growth_after_iteration_2": round(growth, 4), "limit": GROWTH_LIMIT, "ok": growth <= GROWTH_LIMIT}


def rss_mb() -> float:
    """Current resident set size of this process [MiB]."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    """Peak resident set size of this process so far [MiB] (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _finetune_profile(path: Path, steps_per_env: int) -> None:
    """The quick profile with fewer env steps per iteration and no checkpoint files in the way."""
    import yaml

    from ..profile import Profile

    raw = yaml.safe_load(Profile.load("quick").path.read_text())
    raw["finetune"]["num_steps_per_env"] = steps_per_env
    raw["finetune"]["save_interval"] = 1000
    path.write_text(yaml.safe_dump(raw))


def _run_stage(stage: str, work: Path, settings: MemorySettings) -> dict:
    """One stage through the ``vt-refine`` command, in this process; the RSS per DPPO update while fine-tuning."""
    from ..cli import main

    start = time.perf_counter()
    record: dict = {"stage": stage}
    if stage == "finetune":  # sample the RSS after each DPPO update
        from ...rl.dppo import algorithm

        per_iteration: list[float] = []
        update = algorithm.DPPO.update

        def update_and_measure(self):
            out = update(self)
            per_iteration.append(round(rss_mb(), 1))
            return out

        algorithm.DPPO.update = update_and_measure
        record["rss_mb_per_iteration"] = per_iteration
    s, checkpoint = settings, str(work / "pretrain/checkpoints/final.pt")
    argv = {
        "collect": ["collect", "--task", TASK, "--num_demos", str(s.num_demos), "--num_envs", str(s.num_envs),
                    "--output", str(work / "demos.hdf5"), "--device", "cpu", "--keep_failed"],
        "pretrain": ["pretrain", "--task", TASK, "--dataset", str(work / "demos.hdf5"), "--profile", "quick",
                     "--steps", str(s.pretrain_steps), "--output", str(work / "pretrain"), "--device", "cpu"],
        "evaluate": ["evaluate", "--task", TASK, "--checkpoint", checkpoint, "--num_episodes", str(s.num_envs),
                     "--num_envs", str(s.num_envs), "--device", "cpu"],
        "finetune": ["finetune", "--task", TASK, "--checkpoint", checkpoint, "--num_envs", str(s.num_envs),
                     "--max_iterations", str(s.iterations), "--profile", str(work / "profile.yaml"),
                     "--output", str(work / "finetune"), "--device", "cpu"],
    }[stage]
    code = main(argv)
    record.update(exit_code=code, peak_rss_mb=round(peak_mb(), 1), seconds=round(time.perf_counter() - start, 1))
    return record


if __name__ == "__main__":  # one stage, in its own process: stage, work folder, settings as JSON
    _record = _run_stage(sys.argv[1], Path(sys.argv[2]), MemorySettings(**json.loads(sys.argv[3])))
    print(_PREFIX + json.dumps(_record), flush=True)
    sys.exit(0 if _record["exit_code"] == 0 else 1)
