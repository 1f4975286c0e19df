"""The pipeline's report: a success table laid out like the paper's Table 2, plots, timings.

Everything is rendered from ``results.json`` (:func:`render_markdown`), so a report can be rebuilt from a
results file alone.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..utils.atomic import write_json_atomic

PAPER_SIM_SUCCESS = {
    # AutoMate id -> {(modality, stage): success} from VT-Refine's simulation table
    "00081": {("visual", "pretrained"): 0.28, ("visual", "finetuned"): 0.57, ("vt", "pretrained"): 0.45, ("vt", "finetuned"): 0.82},
    "00186": {("visual", "pretrained"): 0.32, ("visual", "finetuned"): 0.72, ("vt", "pretrained"): 0.48, ("vt", "finetuned"): 0.94},
    "00007": {("visual", "pretrained"): 0.42, ("visual", "finetuned"): 0.84, ("vt", "pretrained"): 0.54, ("vt", "finetuned"): 0.98},
    "00446": {("visual", "pretrained"): 0.12, ("visual", "finetuned"): 0.36, ("vt", "pretrained"): 0.34, ("vt", "finetuned"): 0.76},
    "00581": {("visual", "pretrained"): 0.18, ("visual", "finetuned"): 0.52, ("vt", "pretrained"): 0.31, ("vt", "finetuned"): 0.78},
}
ROWS = (("visual", "pretrained", "Visual, pre-trained"), ("visual", "finetuned", "Visual, fine-tuned"),
        ("vt", "pretrained", "Visuo-tactile, pre-trained"), ("vt", "finetuned", "Visuo-tactile, fine-tuned"))


def _asset_id(task: str) -> str | None:
    """AutoMate id of a task's assembly (from its registered env cfg)."""
    from isaaclab_tasks.utils.parse_cfg import load_cfg_from_registry

    import vt_refine.tasks  # noqa: F401  (registers the tasks with gymnasium)

    try:
        return str(load_cfg_from_registry(task, "env_cfg_entry_point").task.assembly)
    except Exception:  # an unregistered or foreign task: the table just lacks the paper column
        return None


def build_results(task: str, profile: str, evals: dict, curves: dict, timings: dict, settings,
                  eval_curves: dict | None = None, differences: list | None = None) -> dict:
    """``differences``: [[setting, this run's value, the paper profile's value], ...] (see
    :func:`~vt_refine.app.profile.settings_differences`)."""
    asset = _asset_id(task)
    paper = PAPER_SIM_SUCCESS.get(asset or "", {})
    rows = []
    for modality, stage, label in ROWS:
        ev = evals.get((modality, stage)) or {}
        rows.append({
            "policy": label, "modality": modality, "stage": stage,
            "success_rate": ev.get("success_rate"), "ci95": ev.get("ci95"), "episodes": ev.get("episodes"),
            "successes": ev.get("successes"), "paper_success_rate": paper.get((modality, stage)),
            "checkpoint": ev.get("checkpoint"),
        })
    return {
        "task": task, "assembly": asset, "profile": profile, "rows": rows,
        "finetune_curves": {m: [[int(s), float(v)] for s, v in c] for m, c in curves.items()},
        # evaluated checkpoints along fine-tuning: modality -> [[env steps, success rate, ci low, ci high], ...]
        "finetune_evaluations": {m: [[int(p[0]), float(p[1]), float(p[2]), float(p[3])] for p in c]
                                 for m, c in (eval_curves or {}).items()},
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "settings": getattr(settings, "__dict__", settings),
        "differs_from_paper": [list(row) for row in (differences or [])],
    }


def render_markdown(results: dict) -> str:
    lines = [f"# VT-Refine on {results['task']} ({results['profile']} profile)", ""]
    lines += ["Success rate over the same evaluation seeds for all four policies (95% Wilson interval), next to "
              "the paper's simulation results for this assembly.", ""]
    lines += ["| policy | ours | 95% CI | episodes | paper (sim) |", "|---|---|---|---|---|"]
    for row in results["rows"]:
        ours = "n/a" if row["success_rate"] is None else f"{row['success_rate']:.2f}"
        ci = "n/a" if not row["ci95"] else f"{row['ci95'][0]:.2f}-{row['ci95'][1]:.2f}"
        paper = "n/a" if row["paper_success_rate"] is None else f"{row['paper_success_rate']:.2f}"
        lines.append(f"| {row['policy']} | {ours} | {ci} | {row['episodes'] or 'n/a'} | {paper} |")
    lines += ["", "## Fine-tuning", "", "Success rate against env steps of fine-tuning: lines are the training rollouts "
              "(exploration noise on), markers with bars the evaluated checkpoints (deterministic chain, 95% CI; "
              "0 env steps is the pre-trained policy).", "", "![fine-tuning curves](finetune_curves.png)", ""]
    lines += ["## Touch", "", "Tactile readings of the four pads over a successful expert insertion:", "",
              "![tactile heatmaps](tactile_insertion.png)", "",
              "The merged visuo-tactile point cloud (camera frame) at the moment of strongest contact:", "",
              "![point cloud](point_cloud_contact.png)", ""]
    if results.get("media_note"):
        lines += [results["media_note"], ""]
    if results.get("differs_from_paper"):
        lines += ["## Settings that differ from the paper's", "", "This run's profile against `config/paper.yaml` "
                  "(the paper's method where it is public):", "", "| setting | this run | paper profile |",
                  "|---|---|---|"]
        lines += [f"| `{key}` | {ours} | {paper} |" for key, ours, paper in results["differs_from_paper"]]
        lines += [""]
    lines += ["## Wall time", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in results.get("timings_s", {}).items()]
    lines += ["", f"Settings: `{json.dumps(results.get('settings', {}))}`", ""]
    return "\n".join(lines)


def write_report(run_dir: Path, task: str, profile: str, evals: dict, curves: dict, demos: Path, timings: dict,
                 settings, eval_curves: dict | None = None, differences: list | None = None) -> Path:
    report = Path(run_dir) / "report"
    report.mkdir(parents=True, exist_ok=True)
    results = build_results(task, profile, evals, curves, timings, settings, eval_curves, differences)
    plot_curves(results["finetune_curves"], report / "finetune_curves.png", results["finetune_evaluations"])
    results["media_note"] = plot_demo_media(demos, report)
    (report / "report.md").write_text(render_markdown(results))
    write_json_atomic(report / "results.json", results)
    return report


def plot_curves(curves: dict, path: Path, evaluations: dict | None = None) -> None:
    """Rollout success (lines) and evaluated checkpoints (markers with 95% CI bars) against env steps."""
    from .viz import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 3.8), constrained_layout=True)
    colors = {"vt": "tab:blue", "visual": "tab:orange"}
    names = {"vt": "visuo-tactile", "visual": "visual"}
    for modality, points in curves.items():
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, color=colors.get(modality), alpha=0.6, label=f"{names.get(modality, modality)}, rollouts")
    for modality, points in (evaluations or {}).items():
        if points:
            xs, ys, lo, hi = zip(*points)
            err = [[y - a for y, a in zip(ys, lo)], [b - y for y, b in zip(ys, hi)]]
            ax.errorbar(xs, ys, yerr=err, fmt="o", capsize=3, color=colors.get(modality),
                        label=f"{names.get(modality, modality)}, evaluated")
    ax.set_xlabel("env steps of fine-tuning")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_demo_media(demos: Path, report: Path) -> str:
    """Tactile heatmaps over a successful demo, the merged cloud at contact, and a GIF of the touch readings.

    Returns a note for the report (what was drawn from what)."""
    import numpy as np

    from ..data.hdf5_dataset import DemoReader
    from .viz import save_point_cloud, save_tactile_gif, save_tactile_sequence

    reader = DemoReader(demos)
    index = next((i for i, ok in enumerate(reader.successes()) if ok), 0)
    tactile = reader.read(index, "obs/tactile_image")  # (T, 4, 12, 32)
    cloud = reader.read(index, "obs/point_cloud")  # (T, N, 5)
    strength = tactile.reshape(len(tactile), -1).sum(axis=1)
    touching = np.nonzero(strength > 0)[0]
    frames = touching[np.linspace(0, len(touching) - 1, 6).astype(int)] if len(touching) else np.arange(6)
    save_tactile_sequence(tactile, frames, report / "tactile_insertion.png")
    save_point_cloud(cloud[int(strength.argmax())], report / "point_cloud_contact.png")
    save_tactile_gif(tactile, report / "tactile_episode.gif")
    return ("Media come from demonstration episode "
            f"{index} (scripted expert). `tactile_episode.gif` animates the four pads over that episode. A rendered "
            "video of an evaluation episode is not produced: kit-less Newton renders depth only here, so there is "
            "no RGB to encode.")
