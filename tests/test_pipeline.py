"""The pipeline's bookkeeping: run folders, stage skipping/resume, half-written outputs, report rendering."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vt_refine.app import pipeline
from vt_refine.app.profile import CollectSettings, EvaluateSettings, FinetuneSettings, Profile
from vt_refine.app.report import ROWS, render_markdown
from vt_refine.utils.errors import UserError

TASK = "VTRefine-PegInHole-Aloha"


def profile(curve_every=0, iterations=1, finetune_envs=1, steps_per_env=240):
    return Profile(name="quick", path=Path("quick.yaml"), diffusion=None,
                   collect=CollectSettings(num_demos=2, num_envs=1),
                   evaluate=EvaluateSettings(num_episodes=4, num_envs=2, curve_every=curve_every, curve_episodes=8),
                   finetune=FinetuneSettings(num_envs=finetune_envs, runner={
                       "max_iterations": iterations, "num_steps_per_env": steps_per_env}))


def settings():
    return profile().settings_dict()


def test_unfinished_run_is_resumed_and_finished_one_is_not(tmp_path):
    first = pipeline.find_or_create_run(tmp_path, TASK, "quick", new=False)
    pipeline.check_manifest(first, TASK, "quick", settings())
    assert pipeline.find_or_create_run(tmp_path, TASK, "quick", new=False) == first  # resumed
    (first / "report").mkdir()
    (first / "report" / "results.json").write_text("{}")
    import time

    time.sleep(1.1)  # run folders are stamped to the second
    second = pipeline.find_or_create_run(tmp_path, TASK, "quick", new=False)
    assert second != first  # a finished run is never overwritten


def test_a_run_folder_of_another_task_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    pipeline.check_manifest(run, "VTRefine-Bayonet-Aloha", "quick", settings())
    with pytest.raises(UserError, match="holds a run of VTRefine-Bayonet-Aloha"):
        pipeline.check_manifest(run, TASK, "quick", settings())
    assert json.loads((run / "run.json").read_text())["task"] == "VTRefine-Bayonet-Aloha"  # nothing overwritten


def _demo_file(path, n):
    from vt_refine.data.demo_writer import DemoWriter

    expected = {"actions": ((16,), "float32"), "obs/joint_pos": ((16,), "float32")}
    with DemoWriter(path, task=TASK, env_args={}, expected=expected) as writer:
        for i in range(n):
            writer.append_episode({"joint_pos": np.zeros((5, 16), np.float32)}, np.zeros((5, 16), np.float32),
                                  success=True, seed=i)


def test_demo_stage_skips_complete_files_and_sets_corrupt_ones_aside(tmp_path):
    path = tmp_path / "demos.hdf5"
    assert not pipeline._demos_complete(path, TASK, 2)
    _demo_file(path, 1)
    assert not pipeline._demos_complete(path, TASK, 2)  # resumed by collect, which appends
    _demo_file(path, 1)
    assert pipeline._demos_complete(path, TASK, 2)
    with pytest.raises(UserError, match="holds demos of"):
        pipeline._demos_complete(path, "VTRefine-Bayonet-Aloha", 2)
    path.write_bytes(path.read_bytes()[: 2000])  # truncated
    assert not pipeline._demos_complete(path, TASK, 2)
    assert (tmp_path / "demos.corrupt.hdf5").is_file() and not path.exists()  # kept for inspection, not deleted


class _FakeResult:
    def __init__(self, checkpoint, episodes):
        self.data = {"checkpoint": str(checkpoint), "episodes": episodes, "success_rate": 0.5, "successes": 2,
                     "ci95": [0.15, 0.85]}
        self.successes, self.episodes, self.success_rate, self.ci95 = 2, episodes, 0.5, (0.15, 0.85)

    def to_dict(self):
        return self.data


def test_eval_stage_skips_valid_results_and_redoes_half_written_ones(tmp_path, monkeypatch):
    import vt_refine.app.evaluate as evaluation

    calls = []

    def fake_evaluate(task, checkpoint, num_episodes, num_envs, seed, device, output):
        calls.append(checkpoint)
        result = _FakeResult(checkpoint, num_episodes)
        output.write_text(json.dumps(result.to_dict()))
        return result

    monkeypatch.setattr(evaluation, "evaluate_policy", fake_evaluate)
    out = tmp_path / "eval.json"
    p = profile()
    pipeline._evaluate_cached(TASK, "ckpt.pt", out, p, 4, 0, "cpu")
    pipeline._evaluate_cached(TASK, "ckpt.pt", out, p, 4, 0, "cpu")
    assert calls == ["ckpt.pt"]  # the second call was skipped
    pipeline._evaluate_cached(TASK, "other.pt", out, p, 4, 0, "cpu")
    assert calls == ["ckpt.pt", "other.pt"]  # another checkpoint: evaluated again
    out.write_text('{"checkpoint": "other.pt", "episo')  # half-written
    pipeline._evaluate_cached(TASK, "other.pt", out, p, 4, 0, "cpu")
    assert len(calls) == 3


def _results():
    rows = []
    for i, (modality, stage, label) in enumerate(ROWS):
        rows.append({"policy": label, "modality": modality, "stage": stage, "success_rate": 0.25 * i,
                     "ci95": [0.0, 0.5], "episodes": 16, "successes": 4 * i, "paper_success_rate": 0.32 + 0.1 * i,
                     "checkpoint": "x"})
    return {"task": TASK, "profile": "quick", "rows": rows, "finetune_curves": {}, "timings_s": {"collect": 1.0}}


def test_report_renders_the_table_from_a_results_file():
    text = render_markdown(_results())
    assert "| Visual, pre-trained | 0.00 | 0.00-0.50 | 16 | 0.32 |" in text
    assert "| Visuo-tactile, fine-tuned | 0.75 | 0.00-0.50 | 16 | 0.62 |" in text


def test_the_report_lists_the_settings_that_differ_from_the_paper_profile(tmp_path):
    from vt_refine.app.profile import settings_differences

    paper = Profile.load("paper")
    assert settings_differences(paper, paper) == []
    path = tmp_path / "p.yaml"
    text = Path(paper.path).read_text().replace("finetune:\n", "finetune:\n  progress_reward_weight: 0.2\n", 1)
    path.write_text(text)
    differences = settings_differences(Profile.load(path), paper)
    assert differences == [["finetune.progress_reward_weight", 0.2, 0.0]]  # exactly the one changed setting
    quick = dict((key, (ours, theirs)) for key, ours, theirs in settings_differences(Profile.load("quick"), paper))
    assert quick["finetune.num_envs"][1] == 1000 and "policy.obs_steps" not in quick  # To = 2 in both
    results = {**_results(), "differs_from_paper": [[k, *v] for k, v in quick.items()]}
    assert "| `finetune.num_envs` | 16 | 1000 |" in render_markdown(results)
    assert "differ from the paper" not in render_markdown(_results())


def test_report_command_rerenders_and_rejects_bad_files(tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps(_results()))
    out = subprocess.run([sys.executable, "-m", "vt_refine.app.cli", "report", str(results)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "Visuo-tactile, fine-tuned" in (tmp_path / "report.md").read_text()
    results.write_text("{not json")
    out = subprocess.run([sys.executable, "-m", "vt_refine.app.cli", "report", str(results)], capture_output=True, text=True)
    assert out.returncode == 2 and "is not valid JSON" in out.stderr and "Traceback" not in out.stderr


def test_unknown_profile_is_a_clear_error():
    out = subprocess.run([sys.executable, "-m", "vt_refine.app.cli", "pipeline", "--profile", "fastest"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "unknown profile 'fastest'" in out.stderr and "quick" in out.stderr


def test_evaluation_curve_runs_from_the_pretrained_policy_through_checkpoints_to_the_final_one(tmp_path, monkeypatch):
    """Points at 0 env steps (pre-trained), every curve_every-th checkpoint (its own episodes) and the end; the
    plot draws them next to the rollout curve."""
    from vt_refine.app.report import plot_curves

    evaluated = []

    def fake_cached(task, checkpoint, out, p, episodes, seed, device):
        evaluated.append((Path(checkpoint).name, episodes))
        return {"success_rate": 0.5, "ci95": [0.3, 0.7]}

    monkeypatch.setattr(pipeline, "_evaluate_cached", fake_cached)
    s = profile(curve_every=2, iterations=6, finetune_envs=4, steps_per_env=16)
    for it in (2, 4):
        (tmp_path / "finetune" / "vt").mkdir(parents=True, exist_ok=True)
        (tmp_path / "finetune" / "vt" / f"model_{it}.pt").write_bytes(b"x")
    evals = {("vt", "pretrained"): {"success_rate": 0.2, "ci95": [0.1, 0.3]},
             ("vt", "finetuned"): {"success_rate": 0.6, "ci95": [0.5, 0.7]}}
    points = pipeline._evaluation_curve(TASK, tmp_path, "vt", evals, s, 0, "cpu")
    assert [p[0] for p in points] == [0, 3 * 64, 5 * 64, 6 * 64]  # 64 env steps per iteration
    assert points[0][1] == 0.2 and points[-1][1] == 0.6
    assert evaluated == [("model_2.pt", 8), ("model_4.pt", 8)]
    plot_curves({"vt": [(64, 0.1), (128, 0.3)]}, tmp_path / "curves.png", {"vt": points})
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_a_stage_killed_during_its_last_write_loses_nothing_and_the_rerun_completes(tmp_path):
    """The evaluation stage's result file: a first result is published; a second evaluation's process is killed
    (SIGKILL) with its result fully written to the temporary but not yet renamed. The published file is still the
    first, whole; the rerun evaluates again, publishes, and no temporary is left."""
    out = tmp_path / "eval.json"
    code = f"""
import os, signal, sys
import vt_refine.app.evaluate as evaluation
from vt_refine.app import pipeline
from vt_refine.app.profile import Profile
from vt_refine.utils.atomic import write_json_atomic

def fake_evaluate(task, checkpoint, num_episodes, num_envs, seed, device, output):
    result = type("R", (), {{}})()
    result.successes, result.episodes, result.success_rate, result.ci95 = 2, num_episodes, 0.5, (0.15, 0.85)
    result.to_dict = lambda: {{"checkpoint": str(checkpoint), "episodes": num_episodes, "success_rate": 0.5}}
    write_json_atomic(output, result.to_dict())
    return result

evaluation.evaluate_policy = fake_evaluate
if sys.argv[1] == "kill":
    os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)  # the kill lands between write and rename
pipeline._evaluate_cached("{TASK}", sys.argv[2], __import__("pathlib").Path(r"{out}"), Profile.load("quick"), 4, 0,
                          "cpu")
"""

    def stage(mode, checkpoint):
        return subprocess.run([sys.executable, "-c", code, mode, checkpoint], capture_output=True, text=True)

    assert stage("run", "first.pt").returncode == 0
    killed = stage("kill", "second.pt")
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert json.loads(out.read_text())["checkpoint"] == "first.pt"  # the finished result, whole
    assert len(list(tmp_path.glob(".eval.json.*.tmp"))) == 1  # what the kill left
    rerun = stage("run", "second.pt")
    assert rerun.returncode == 0 and "skipped" not in rerun.stdout
    assert json.loads(out.read_text())["checkpoint"] == "second.pt"
    assert list(tmp_path.glob(".eval.json.*.tmp")) == []


def test_profile_sections_are_typed_and_the_finetune_section_is_the_runner_cfg(tmp_path):
    quick = Profile.load("quick")
    assert quick.collect.num_demos >= 1 and quick.finetune.num_envs >= 1
    cfg = quick.finetune.runner_cfg()
    assert cfg.max_iterations == quick.finetune.max_iterations
    assert cfg.actor.sampler == quick.finetune.runner["actor"]["sampler"]  # nested like the cfg, no dotted strings
    path = tmp_path / "p.yaml"
    for text, message in [("", "is empty"), ("polcy: {}\n", "unknown section"),
                          ("collect: {num_demo: 3}\n", "unknown key"),
                          ("finetune: {actor: {samplr: ddim}}\n", "finetune.actor.samplr: no such field"),
                          ("finetune: {algorithm: {actor_learning_rate: fast}}\n", "must be a number"),
                          ("finetune: {actor: {sampler: 3}}\n", "must be a str"),
                          ("policy: {obs_step: 2}\n", "unknown key"),
                          ("finetune: {progress_reward_weight: 0.5}\n", "progress_reward_weight must be"),
                          ("finetune: {progress_reward_weight: yes}\n", "progress_reward_weight must be")]:
        path.write_text(text)
        with pytest.raises(UserError, match=message):
            Profile.load(path)
    path.write_text("finetune: {num_envs: 2, algorithm: {max_grad_norm: 1, actor_learning_rate: 1e-4}}\n")
    cfg = Profile.load(path).finetune.runner_cfg()  # an int and PyYAML's string "1e-4" for float fields
    assert cfg.algorithm.max_grad_norm == 1.0 and cfg.algorithm.actor_learning_rate == 1e-4
    assert Profile.load(path).finetune.progress_reward_weight == 0.0  # the paper's sparse reward by default
    path.write_text("finetune: {progress_reward_weight: 0.2}\n")
    assert Profile.load(path).finetune.progress_reward_weight == 0.2
