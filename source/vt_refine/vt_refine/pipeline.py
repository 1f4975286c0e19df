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
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .utils.atomic import write_json_atomic
from .utils.errors import UserError

MODALITIES = ("vt", "visual")


@dataclass
class PipelineSettings:
    num_demos: int
    collect_envs: int
    eval_episodes: int
    eval_envs: int
    finetune_envs: int
    finetune_iterations: int
    finetune_overrides: dict
    pretrain_steps: int | None = None
    curve_every: int = 0
    """Also evaluate every n-th fine-tuning checkpoint (0: only the pre-trained and the final one)."""
    curve_episodes: int = 16
    """Episodes of each of those intermediate evaluations."""

    @classmethod
    def from_profile(cls, raw: dict) -> PipelineSettings:
        for name in ("collect", "evaluate", "finetune"):
            if not isinstance(raw.get(name) or {}, dict):
                raise UserError(f"profile section {name}: must be a mapping of settings, got {raw[name]!r}")
        collect, evaluate, finetune = raw.get("collect") or {}, raw.get("evaluate") or {}, dict(raw.get("finetune") or {})

        def count(section: dict, name: str, key: str, default: int) -> int:
            value = section.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"profile value {name}.{key} must be a whole number >= 1, got {value!r}")
            return value

        overrides = {}
        if "num_steps_per_env" in finetune:
            overrides["num_steps_per_env"] = count(finetune, "finetune", "num_steps_per_env", 1)
        if "save_interval" in finetune:  # iterations between model_*.pt files: what a killed run resumes from
            overrides["save_interval"] = count(finetune, "finetune", "save_interval", 1)
        for section in ("actor", "algorithm"):
            for key, value in (finetune.get(section) or {}).items():
                overrides[f"{section}.{key}"] = value
        return cls(
            num_demos=count(collect, "collect", "num_demos", 30),
            collect_envs=count(collect, "collect", "num_envs", 8),
            eval_episodes=count(evaluate, "evaluate", "num_episodes", 16),
            eval_envs=count(evaluate, "evaluate", "num_envs", 8),
            finetune_envs=count(finetune, "finetune", "num_envs", 8),
            finetune_iterations=count(finetune, "finetune", "max_iterations", 8),
            finetune_overrides=overrides,
            curve_every=0 if evaluate.get("curve_every", 0) == 0 else count(evaluate, "evaluate", "curve_every", 1),
            curve_episodes=count(evaluate, "evaluate", "curve_episodes", 16),
        )


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


def check_manifest(run: Path, task: str, profile: str, settings: PipelineSettings) -> None:
    manifest = run / "run.json"
    if manifest.is_file():
        try:
            data = json.loads(manifest.read_text())
        except json.JSONDecodeError:
            data = None
        if data is not None and (data.get("task") != task or data.get("profile") != profile):
            raise UserError(f"{run} holds a run of {data.get('task')} ({data.get('profile')} profile), not {task} "
                            f"({profile}); pass another --run or --new")
    write_json_atomic(manifest, {"task": task, "profile": profile, "settings": settings.__dict__,
                                 "created": datetime.now().isoformat(timespec="seconds")})


def run_pipeline(task: str, profile: str = "quick", output: str | Path = "outputs", device: str | None = None,
                 seed: int = 0, run: str | Path | None = None, new: bool = False) -> Path:
    """Run (or resume) the whole recipe; returns the report folder."""
    from .envs import check_task
    from .training import load_profile_file, task_for_modality
    from .utils.device import resolve_device

    check_task(task)
    for modality in MODALITIES:
        check_task(task_for_modality(task, modality))
    device = resolve_device(device)
    profile_path, raw = load_profile_file(profile)
    settings = PipelineSettings.from_profile(raw)
    output = Path(output)
    run_dir = Path(run) if run is not None else find_or_create_run(output, task, profile, new)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_manifest(run_dir, task, profile, settings)
    print(f"[vt-refine pipeline] run folder: {run_dir}  (profile {profile_path}, device {device})", flush=True)
    timings: dict[str, float] = {}

    demos = run_dir / "demos" / "demos.hdf5"
    t0 = time.perf_counter()
    _stage(f"1/5 collect {settings.num_demos} expert demos")
    if _demos_complete(demos, task, settings.num_demos):
        print(f"  skipped: {demos} holds {settings.num_demos} demos")
    else:
        from .expert.collect import collect_demos

        collect_demos(task, settings.num_demos, demos, num_envs=settings.collect_envs, seed=seed, device=device)
    timings["collect"] = time.perf_counter() - t0

    checkpoints = {}
    for modality in MODALITIES:
        t0 = time.perf_counter()
        _stage(f"2/5 pre-train the {modality} policy")
        from .training import run_pretrain

        result = run_pretrain(task, [demos], run_dir / "pretrain" / modality, profile=str(profile_path),
                              modality=modality, device=device, seed=seed)
        checkpoints[(modality, "pretrained")] = result.final_checkpoint
        timings[f"pretrain_{modality}"] = time.perf_counter() - t0

    curves = {}
    for modality in MODALITIES:
        t0 = time.perf_counter()
        _stage(f"3/5 fine-tune the {modality} policy with DPPO ({settings.finetune_iterations} iterations)")
        from .training import run_finetune

        ft_dir = run_dir / "finetune" / modality
        checkpoints[(modality, "finetuned")] = run_finetune(
            task_for_modality(task, modality), checkpoints[(modality, "pretrained")], ft_dir,
            settings.finetune_iterations, settings.finetune_envs, device=device, seed=seed,
            agent_overrides=settings.finetune_overrides)
        steps_per_iteration = settings.finetune_envs * int(settings.finetune_overrides.get("num_steps_per_env", 240))
        curves[modality] = read_curve(ft_dir, steps_per_iteration)
        timings[f"finetune_{modality}"] = time.perf_counter() - t0

    evals = {}
    for modality in MODALITIES:
        for stage in ("pretrained", "finetuned"):
            t0 = time.perf_counter()
            _stage(f"4/5 evaluate {modality} {stage} ({settings.eval_episodes} episodes)")
            out = run_dir / "eval" / f"{modality}_{stage}.json"
            evals[(modality, stage)] = _evaluate_cached(
                task_for_modality(task, modality), checkpoints[(modality, stage)], out, settings, seed, device)
            timings[f"eval_{modality}_{stage}"] = time.perf_counter() - t0

    eval_curves = {}
    for modality in MODALITIES:
        t0 = time.perf_counter()
        eval_curves[modality] = _evaluation_curve(task_for_modality(task, modality), run_dir, modality, evals,
                                                  settings, seed, device)
        timings[f"eval_curve_{modality}"] = time.perf_counter() - t0

    _stage("5/5 report")
    from .report import write_report

    report = write_report(run_dir, task, profile, evals, curves, demos, timings, settings, eval_curves)
    print(f"[vt-refine pipeline] report: {report / 'report.md'}", flush=True)
    return report


def _demos_complete(path: Path, task: str, num_demos: int) -> bool:
    if not path.is_file():
        return False
    from .data.hdf5_dataset import DemoReader

    try:
        reader = DemoReader(path)
    except UserError as error:
        print(f"  {path} is unreadable ({error}); it is set aside and demos are collected again")
        path.rename(path.with_suffix(".corrupt.hdf5"))
        return False
    if reader.task != task:
        raise UserError(f"{path} holds demos of {reader.task}, not {task}")
    return len(reader) >= num_demos


def _evaluate_cached(task, checkpoint, out: Path, settings: PipelineSettings, seed: int, device: str) -> dict:
    if out.is_file():
        try:
            data = json.loads(out.read_text())
            if data.get("checkpoint") == str(checkpoint) and data.get("episodes") == settings.eval_episodes:
                print(f"  skipped: {out}")
                return data
        except json.JSONDecodeError:
            pass  # a half-written result: evaluate again
    from .evaluation import evaluate_policy

    result = evaluate_policy(task, checkpoint, num_episodes=settings.eval_episodes, num_envs=settings.eval_envs,
                             seed=1000 + seed, device=device, output=out)
    print(f"  success {result.successes}/{result.episodes} = {result.success_rate:.2f} "
          f"(95% CI {result.ci95[0]:.2f}-{result.ci95[1]:.2f})", flush=True)
    return result.to_dict()


def _evaluation_curve(task, run_dir: Path, modality: str, evals: dict, settings: PipelineSettings, seed: int,
                      device: str) -> list[tuple[int, float, float, float]]:
    """(env steps, success, ci low, ci high) of the pre-trained policy (0 steps), every ``curve_every``-th fine-tuning
    checkpoint (``curve_episodes`` episodes each, same seeds) and the final one."""
    steps_per_iteration = settings.finetune_envs * int(settings.finetune_overrides.get("num_steps_per_env", 240))
    points = []
    pre, fin = evals[(modality, "pretrained")], evals[(modality, "finetuned")]
    points.append((0, pre["success_rate"], *pre["ci95"]))
    if settings.curve_every:
        for iteration in range(settings.curve_every, settings.finetune_iterations, settings.curve_every):
            checkpoint = run_dir / "finetune" / modality / f"model_{iteration}.pt"
            if not checkpoint.is_file():
                continue
            out = run_dir / "eval" / f"{modality}_finetuned_it{iteration}.json"
            curve_settings = PipelineSettings(**{**settings.__dict__, "eval_episodes": settings.curve_episodes})
            _stage(f"4/5 evaluate {modality} after {iteration} iterations ({settings.curve_episodes} episodes)")
            data = _evaluate_cached(task, checkpoint, out, curve_settings, seed, device)
            # model_<it>.pt is saved after update <it> (0-based): it has seen it + 1 iterations of rollouts
            points.append(((iteration + 1) * steps_per_iteration, data["success_rate"], *data["ci95"]))
    points.append((settings.finetune_iterations * steps_per_iteration, fin["success_rate"], *fin["ci95"]))
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
