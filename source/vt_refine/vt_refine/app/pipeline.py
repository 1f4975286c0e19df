"""``vt-refine pipeline``: the paper's recipe on one task, end to end, resumable stage by stage.

collect demos -> pre-train the visuo-tactile (VT) and the visual policy -> fine-tune both with DPPO ->
evaluate all four on the same seeds -> report. Layout of a run (``<output>/<task>/<profile>-<timestamp>/``)::

    run.json                     task, profile, stage settings (a run folder belongs to one task and profile)
    demos/demos.hdf5             expert demonstrations
    pretrain/{vt,visual}/        BC runs (checkpoints/final.pt, tb/)
    finetune/{vt,visual}/        DPPO runs (model_<it>.pt, TensorBoard)
    eval/{vt,visual}_{pretrained,finetuned}.json
    report/                      report.md, results.json, plots

Every stage is skipped when its output exists and is valid, so rerunning the same command after a crash
resumes where it stopped; a half-written output (the trainers checkpoint as they go) is continued or redone.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

from ..task_ids import Modality, task_for_modality
from ..utils.atomic import write_json_atomic
from ..utils.errors import UserError
from .checkpoint import Checkpoint
from .profile import Profile


def _stage(name: str) -> None:
    print(f"\n[vt-refine pipeline] === {name} ===", flush=True)


def find_or_create_run(output: Path, task: str, profile: str, new: bool) -> Path:
    """The newest unfinished run of this task and profile (resumed), or a new timestamped folder."""
    task_dir = output / task
    if task_dir.exists() and not task_dir.is_dir():
        raise UserError(f"{task_dir} exists and is not a folder; choose another --output")
    if not new and task_dir.is_dir():
        for run in sorted(task_dir.glob(f"{profile}-*"), reverse=True):
            manifest = run / "run.json"
            if manifest.is_file() and not (run / "report" / "results.json").is_file():
                return run
    run = task_dir / f"{profile}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    run.mkdir(parents=True, exist_ok=False)
    return run


def check_manifest(run: Path, task: str, profile: str, settings: dict) -> None:
    manifest = run / "run.json"
    if manifest.is_file():
        try:
            data = json.loads(manifest.read_text())
        except json.JSONDecodeError:
            data = None
        if data is not None and (data.get("task") != task or data.get("profile") != profile):
            raise UserError(f"{run} holds a run of {data.get('task')} ({data.get('profile')} profile), not {task} "
                            f"({profile}); pass another --run or --new")
    write_json_atomic(manifest, {"task": task, "profile": profile, "settings": settings,
                                 "created": datetime.now().isoformat(timespec="seconds")})


def run_pipeline(task: str, profile: Profile, device: str, output: str | Path = "outputs", seed: int = 0,
                 run: str | Path | None = None, new: bool = False) -> Path:
    """Run (or resume) the whole recipe on a checked task, profile and device; returns the report folder."""
    output = Path(output)
    run_dir = Path(run) if run is not None else find_or_create_run(output, task, profile.name, new)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_manifest(run_dir, task, profile.name, profile.settings_dict())
    print(f"[vt-refine pipeline] run folder: {run_dir}  (profile {profile.path}, device {device})", flush=True)
    timings: dict[str, float] = {}

    demos = run_dir / "demos" / "demos.hdf5"
    num_demos = profile.collect.num_demos
    t0 = time.perf_counter()
    _stage(f"1/5 collect {num_demos} expert demos")
    if _demos_complete(demos, task, num_demos):
        print(f"  skipped: {demos} holds {num_demos} demos")
    else:
        from .collect import collect_demos

        collect_demos(task, num_demos, demos, num_envs=profile.collect.num_envs, seed=seed, device=device)
    timings["collect"] = time.perf_counter() - t0

    checkpoints: dict[tuple[Modality, str], Path] = {}
    for modality in Modality:
        t0 = time.perf_counter()
        _stage(f"2/5 pre-train the {modality.value} policy")
        from .pretrain import run_pretrain

        result = run_pretrain(task, [demos], run_dir / "pretrain" / modality.value,
                              profile.with_pretrain(seed=seed), modality=modality, device=device)
        checkpoints[(modality, "pretrained")] = result.final_checkpoint
        timings[f"pretrain_{modality.value}"] = time.perf_counter() - t0

    curves = {}
    finetune = profile.finetune
    steps_per_iteration = finetune.num_envs * finetune.num_steps_per_env
    for modality in Modality:
        t0 = time.perf_counter()
        _stage(f"3/5 fine-tune the {modality.value} policy with DPPO ({finetune.max_iterations} iterations)")
        from .finetune import run_finetune

        ft_dir = run_dir / "finetune" / modality.value
        checkpoints[(modality, "finetuned")] = run_finetune(
            task_for_modality(task, modality), Checkpoint.open(checkpoints[(modality, "pretrained")]), ft_dir,
            finetune, device=device, seed=seed)
        curves[modality.value] = read_curve(ft_dir, steps_per_iteration)
        timings[f"finetune_{modality.value}"] = time.perf_counter() - t0

    evals = {}
    episodes = profile.evaluate.num_episodes
    for modality in Modality:
        for stage in ("pretrained", "finetuned"):
            t0 = time.perf_counter()
            _stage(f"4/5 evaluate {modality.value} {stage} ({episodes} episodes)")
            out = run_dir / "eval" / f"{modality.value}_{stage}.json"
            evals[(modality.value, stage)] = _evaluate_cached(
                task_for_modality(task, modality), checkpoints[(modality, stage)], out, profile, episodes, seed,
                device)
            timings[f"eval_{modality.value}_{stage}"] = time.perf_counter() - t0

    eval_curves = {}
    for modality in Modality:
        t0 = time.perf_counter()
        eval_curves[modality.value] = _evaluation_curve(task_for_modality(task, modality), run_dir, modality.value,
                                                        evals, profile, seed, device)
        timings[f"eval_curve_{modality.value}"] = time.perf_counter() - t0

    _stage("5/5 report")
    from .profile import settings_differences
    from .report import write_report

    report = write_report(run_dir, task, profile.name, evals, curves, demos, timings, profile.settings_dict(),
                          eval_curves, settings_differences(profile, Profile.load("paper")))
    print(f"[vt-refine pipeline] report: {report / 'report.md'}", flush=True)
    return report


def _demos_complete(path: Path, task: str, num_demos: int) -> bool:
    if not path.is_file():
        return False
    from ..data.hdf5_dataset import DemoReader

    try:
        reader = DemoReader(path)
    except UserError as error:
        print(f"  {path} is unreadable ({error}); it is set aside and demos are collected again")
        path.rename(path.with_suffix(".corrupt.hdf5"))
        return False
    if reader.task != task:
        raise UserError(f"{path} holds demos of {reader.task}, not {task}")
    return len(reader) >= num_demos


def _evaluate_cached(task, checkpoint: Path, out: Path, profile: Profile, episodes: int, seed: int,
                     device: str) -> dict:
    if out.is_file():
        try:
            data = json.loads(out.read_text())
            if data.get("checkpoint") == str(checkpoint) and data.get("episodes") == episodes:
                print(f"  skipped: {out}")
                return data
        except json.JSONDecodeError:
            pass  # a half-written result: evaluate again
    from .evaluate import evaluate_policy

    result = evaluate_policy(task, checkpoint, num_episodes=episodes,
                             num_envs=profile.evaluate.num_envs, seed=profile.evaluate.seed_offset + seed,
                             device=device, output=out)
    print(f"  success {result.successes}/{result.episodes} = {result.success_rate:.2f} "
          f"(95% CI {result.ci95[0]:.2f}-{result.ci95[1]:.2f})", flush=True)
    return result.to_dict()


def _evaluation_curve(task, run_dir: Path, modality: str, evals: dict, profile: Profile, seed: int,
                      device: str) -> list[tuple[int, float, float, float]]:
    """(env steps, success, ci low, ci high) of the pre-trained policy (0 steps), every ``curve_every``-th fine-tuning
    checkpoint (``curve_episodes`` episodes each, same seeds) and the final one."""
    finetune, evaluate = profile.finetune, profile.evaluate
    steps_per_iteration = finetune.num_envs * finetune.num_steps_per_env
    points = []
    pre, fin = evals[(modality, "pretrained")], evals[(modality, "finetuned")]
    points.append((0, pre["success_rate"], *pre["ci95"]))
    if evaluate.curve_every:
        for iteration in range(evaluate.curve_every, finetune.max_iterations, evaluate.curve_every):
            checkpoint = run_dir / "finetune" / modality / f"model_{iteration}.pt"
            if not checkpoint.is_file():
                continue
            out = run_dir / "eval" / f"{modality}_finetuned_it{iteration}.json"
            _stage(f"4/5 evaluate {modality} after {iteration} iterations ({evaluate.curve_episodes} episodes)")
            data = _evaluate_cached(task, checkpoint, out, profile, evaluate.curve_episodes, seed, device)
            # model_<it>.pt is saved after update <it> (0-based): it has seen it + 1 iterations of rollouts
            points.append(((iteration + 1) * steps_per_iteration, data["success_rate"], *data["ci95"]))
    points.append((finetune.max_iterations * steps_per_iteration, fin["success_rate"], *fin["ci95"]))
    return points


def read_curve(run_dir: Path, env_steps_per_iteration: int) -> list[tuple[int, float]]:
    """(env steps, success rate of the training episodes) points of a DPPO run, from its TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    points: dict[int, float] = {}
    for events in sorted(Path(run_dir).rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        if "DPPO/success_rate" not in acc.Tags().get("scalars", []):
            continue
        for event in acc.Scalars("DPPO/success_rate"):
            points[int(event.step)] = float(event.value)
    return [((it + 1) * env_steps_per_iteration, value) for it, value in sorted(points.items())]
