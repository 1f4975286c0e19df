"""The bad-input sweep: every user-facing command x every bad input in README's table gets one clear line on
stderr naming what to do, exit code 2, no traceback, and is refused before any simulation is built (so a typo
never costs minutes, and nothing on disk is touched).

Each row runs ``vt_refine.app.cli.main`` in-process (a subprocess per row would spend minutes importing torch);
``test_cli.py`` runs a few of the same rows as real subprocesses to check the exit code seen by a shell.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from vt_refine.app.cli import main

TASK = "VTRefine-PegInHole-Aloha"
NO_GPU = not torch.cuda.is_available()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One of each bad file, made once."""
    from vt_refine.data.demo_writer import DemoWriter
    from vt_refine.policies.diffusion import (DiffusionCfg, DiffusionPolicy, DiffusionPolicyCfg, StateEncoderCfg,
                                              UnetCfg, save_checkpoint)

    root = tmp_path_factory.mktemp("bad")
    expected = {"actions": ((16,), "float32"), "obs/joint_pos": ((16,), "float32"),
                "obs/point_cloud": ((8, 5), "float32")}

    def demos(path, task):
        with DemoWriter(path, task, {}, expected) as writer:
            for e in range(2):
                writer.append_episode({"joint_pos": np.zeros((20, 16), np.float32),
                                       "point_cloud": np.zeros((20, 8, 5), np.float32)},
                                      np.zeros((20, 16), np.float32), success=True, seed=e)
        return path

    good = demos(root / "good.hdf5", TASK)
    nan_demos = demos(root / "nan.hdf5", TASK)
    import h5py

    with h5py.File(nan_demos, "r+") as f:  # as a file from elsewhere may be (our writer refuses bad numbers)
        f["data/demo_1/actions"][7, 2] = np.nan
    truncated = root / "truncated.hdf5"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cfg = DiffusionPolicyCfg(use_point_cloud=False, state_encoder=StateEncoderCfg(hidden_dims=(16,)),
                             unet=UnetCfg(down_dims=(16, 32), kernel_size=3, diffusion_step_embed_dim=8),
                             diffusion=DiffusionCfg(denoising_steps=10, ddim_steps=5))
    stats = {"actions": {"min": -np.ones(16), "max": np.ones(16)},
             "joint_pos": {"min": -np.ones(16), "max": np.ones(16)}}
    other_ckpt = save_checkpoint(root / "nutbolt.pt", DiffusionPolicy.from_stats(cfg, stats),
                                 task_id="VTRefine-NutBolt-Aloha")
    corrupt_ckpt = root / "corrupt.pt"
    corrupt_ckpt.write_bytes(other_ckpt.read_bytes()[:1000])
    dppo_ckpt = root / "model_8.pt"
    torch.save({"actor_optimizer_state_dict": {}, "actor_state_dict": {}}, dppo_ckpt)
    a_file = root / "a_file"
    a_file.write_text("not a folder")
    bad_yaml = root / "bad.yaml"
    bad_yaml.write_text("pretrain:\n  total_steps: [1, 2\n")
    bad_value = root / "bad_value.yaml"
    bad_value.write_text("pretrain:\n  total_steps: many\n")
    empty_profile = root / "empty.yaml"
    empty_profile.write_text("# nothing yet\n")
    misspelt_profile = root / "misspelt.yaml"
    misspelt_profile.write_text("pretrian:\n  total_steps: 10\n")
    not_results = root / "not_results.json"
    not_results.write_text('{"hello": 1}')
    not_json = root / "not_json.json"
    not_json.write_text("{ half")
    empty_results = root / "empty.json"
    empty_results.write_text("{}")
    return {
        "good": good, "truncated": truncated, "text": bad_yaml, "other_task_demos": demos(root / "nut.hdf5",
                                                                                          "VTRefine-NutBolt-Aloha"),
        "other_task_ckpt": other_ckpt, "corrupt_ckpt": corrupt_ckpt, "dppo_ckpt": dppo_ckpt, "missing": root / "nope",
        "under_a_file": a_file / "out", "a_file": a_file, "folder": root, "bad_yaml": bad_yaml,
        "bad_value": bad_value, "not_results": not_results, "not_json": not_json,
        "empty_results": empty_results, "nan_demos": nan_demos, "empty_profile": empty_profile,
        "misspelt_profile": misspelt_profile,
    }


# (command line with {placeholders} naming the files above, what stderr must say); the README table lists these
CASES = {
    # collect
    "collect/unknown task": ("collect --task VTRefine-Peg-Aloha --num_demos 2 --output {folder}/x.hdf5",
                             "unknown task 'VTRefine-Peg-Aloha'"),
    "collect/wrong type": ("collect --num_envs two --output {folder}/x.hdf5", "expected a whole number, got 'two'"),
    "collect/negative count": ("collect --num_demos -3 --output {folder}/x.hdf5", "expected a number >= 1"),
    "collect/negative noise": ("collect --place_noise -0.01 --output {folder}/x.hdf5",
                               "expected a finite number >= 0, got -0.01"),
    "collect/negative dwell": ("collect --close_dwell -2 --output {folder}/x.hdf5", "expected a number >= 0, got -2"),
    "collect/negative grasp noise": ("collect --grasp_noise -0.004 --output {folder}/x.hdf5",
                                     "expected a finite number >= 0, got -0.004"),
    "collect/DAgger probability above 1": ("collect --dagger_beta 1.5 --output {folder}/x.hdf5",
                                           "expected a probability in [0, 1], got 1.5"),
    "collect/missing DAgger policy": ("collect --dagger_policy {missing} --output {folder}/x.hdf5", "does not exist"),
    "collect/DAgger policy of another task": ("collect --dagger_policy {other_task_ckpt} --output {folder}/x.hdf5",
                                              "VTRefine-NutBolt-Aloha"),
    "collect/truncated HDF5 to append to": ("collect --num_demos 2 --output {truncated}", "truncated.hdf5"),
    "collect/demo file of another task": ("collect --num_demos 2 --output {other_task_demos}",
                                          "holds demonstrations of task 'VTRefine-NutBolt-Aloha'"),
    "collect/unwritable output": ("collect --num_demos 2 --output {under_a_file}", "is a file, not a folder"),
    "collect/cuda without a GPU": ("collect --num_demos 2 --device cuda:0 --output {folder}/x.hdf5", "--device cpu"),
    # pretrain
    "pretrain/unknown task": ("pretrain --task Peg --dataset {good} --output {folder}/p", "unknown task 'Peg'"),
    "pretrain/wrong type": ("pretrain --dataset {good} --steps ten --output {folder}/p", "expected a whole number"),
    "pretrain/negative count": ("pretrain --dataset {good} --steps 0 --output {folder}/p", "expected a number >= 1"),
    "pretrain/missing dataset": ("pretrain --dataset {missing} --output {folder}/p", "does not exist"),
    "pretrain/NaN in a demo": ("pretrain --dataset {nan_demos} --output {folder}/p",
                               "demo demo_1 of"),
    "pretrain/a folder as dataset": ("pretrain --dataset {folder} --output {folder}/p", "is a folder; pass demo files"),
    "pretrain/truncated HDF5": ("pretrain --dataset {truncated} --output {folder}/p", "truncated.hdf5"),
    "pretrain/not an HDF5 file": ("pretrain --dataset {text} --output {folder}/p", "bad.yaml"),
    "pretrain/demos of another task": ("pretrain --dataset {other_task_demos} --output {folder}/p",
                                       "holds demonstrations of VTRefine-NutBolt-Aloha"),
    "pretrain/unknown profile": ("pretrain --dataset {good} --profile fast --output {folder}/p",
                                 "unknown profile 'fast'"),
    "pretrain/profile not YAML": ("pretrain --dataset {good} --profile {bad_yaml} --output {folder}/p",
                                  "is not valid YAML at line"),
    "pretrain/empty profile": ("pretrain --dataset {good} --profile {empty_profile} --output {folder}/p",
                               "empty.yaml is empty"),
    "pretrain/misspelt profile section": ("pretrain --dataset {good} --profile {misspelt_profile} --output {folder}/p",
                                          "unknown section(s) pretrian"),
    "pretrain/profile value of the wrong type": ("pretrain --dataset {good} --profile {bad_value} --output {folder}/p",
                                                 "total_steps"),
    "pretrain/unwritable output": ("pretrain --dataset {good} --output {a_file}", "is a file, not a folder"),
    "pretrain/cuda without a GPU": ("pretrain --dataset {good} --device cuda:0 --output {folder}/p", "--device cpu"),
    # finetune
    "finetune/unknown task": ("finetune --task X --checkpoint {other_task_ckpt} --output {folder}/f",
                              "unknown task 'X'"),
    "finetune/wrong type": ("finetune --checkpoint {other_task_ckpt} --num_envs 1.5 --output {folder}/f",
                            "expected a whole number"),
    "finetune/negative count": ("finetune --checkpoint {other_task_ckpt} --max_iterations -1 --output {folder}/f",
                                "expected a number >= 1"),
    "finetune/missing checkpoint": ("finetune --checkpoint {missing} --output {folder}/f", "does not exist"),
    "finetune/a folder as checkpoint": ("finetune --checkpoint {folder} --output {folder}/f",
                                        "is a folder; pass a checkpoint file"),
    "finetune/corrupt checkpoint": ("finetune --checkpoint {corrupt_ckpt} --output {folder}/f",
                                    "corrupt or incomplete"),
    "finetune/checkpoint of another task": ("finetune --checkpoint {other_task_ckpt} --output {folder}/f",
                                            "VTRefine-NutBolt-Aloha"),
    "finetune/fine-tuned checkpoint where a pre-trained one is needed": (
        "finetune --checkpoint {dppo_ckpt} --output {folder}/f", "is a DPPO checkpoint"),
    "finetune/unwritable output": ("finetune --checkpoint {other_task_ckpt} --output {a_file}",
                                   "is a file, not a folder"),
    "finetune/cuda without a GPU": ("finetune --checkpoint {other_task_ckpt} --device cuda:0 --output {folder}/f",
                                    "--device cpu"),
    # evaluate
    "evaluate/unknown task": ("evaluate --task Y --checkpoint {other_task_ckpt}", "unknown task 'Y'"),
    "evaluate/wrong type": ("evaluate --checkpoint {other_task_ckpt} --num_episodes lots", "expected a whole number"),
    "evaluate/negative count": ("evaluate --checkpoint {other_task_ckpt} --num_envs -8", "expected a number >= 1"),
    "evaluate/missing checkpoint": ("evaluate --checkpoint {missing}", "does not exist"),
    "evaluate/a folder as checkpoint": ("evaluate --checkpoint {folder}", "is a folder; pass a checkpoint file"),
    "evaluate/corrupt checkpoint": ("evaluate --checkpoint {corrupt_ckpt}", "corrupt or incomplete"),
    "evaluate/checkpoint of another task": ("evaluate --checkpoint {other_task_ckpt}", "VTRefine-NutBolt-Aloha"),
    "evaluate/unwritable output": ("evaluate --checkpoint {other_task_ckpt} --output {under_a_file}",
                                   "is a file, not a folder"),
    "evaluate/cuda without a GPU": ("evaluate --checkpoint {other_task_ckpt} --device cuda:0", "--device cpu"),
    # pipeline
    "pipeline/unknown task": ("pipeline --task Z --output {folder}/runs", "unknown task 'Z'"),
    "pipeline/wrong type": ("pipeline --seed minus --output {folder}/runs", "expected a whole number"),
    "pipeline/negative count": ("pipeline --seed -1 --output {folder}/runs", "expected a number >= 0"),
    "pipeline/unknown profile": ("pipeline --profile huge --output {folder}/runs", "unknown profile 'huge'"),
    "pipeline/unwritable output": ("pipeline --output {a_file}", "is a file, not a folder"),
    "pipeline/cuda without a GPU": ("pipeline --device cuda:0 --output {folder}/runs", "--device cpu"),
    # report
    "report/missing results": ("report {missing}", "does not exist"),
    "report/not JSON": ("report {not_json}", "is not valid JSON"),
    "report/not a results file": ("report {not_results}", "is not a pipeline results file: it lacks 'task'"),
    "report/empty results": ("report {empty_results}", "lacks 'task', 'profile', 'rows'"),
    "report/a folder": ("report {folder}", "is a folder"),
    # benchmark
    "benchmark/unknown task": ("benchmark --task W --num_envs 1", "unknown task 'W'"),
    "benchmark/wrong type": ("benchmark --steps many", "expected a whole number"),
    "benchmark/negative count": ("benchmark --num_envs 4 -3", "expected a number >= 1"),
    "benchmark/unwritable output": ("benchmark --num_envs 1 --output {under_a_file}", "is a file, not a folder"),
    "benchmark/cuda without a GPU": ("benchmark --num_envs 1 --device cuda:0", "--device cpu"),
    # demo
    "demo/unknown task": ("demo --task V", "unknown task 'V'"),
    "demo/negative count": ("demo --num_envs 0", "expected a number >= 1"),
    "demo/cuda without a GPU": ("demo --device cuda:0", "--device cpu"),
}


@pytest.fixture(autouse=True)
def no_simulation(monkeypatch):
    """A bad input must be refused before an env is built: building one fails the test."""
    import vt_refine.app.envs

    def refuse(*args, **kwargs):
        raise AssertionError("the command built a simulation instead of refusing its bad input first")

    monkeypatch.setattr(vt_refine.app.envs, "make_env", refuse)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gets_one_clear_line_and_exit_code_2(case, files, capsys):
    command, message = CASES[case]
    if "cuda" in case and not NO_GPU:
        pytest.skip("checks the message on machines without a GPU")
    before = {p: p.stat().st_mtime_ns for p in files.values() if isinstance(p, os.PathLike) and p.is_file()}
    argv = [part.format(**files) for part in command.split()]
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err, err
    lines = [line for line in err.splitlines() if line.strip() and "Warning" not in line]  # third-party warnings
    assert len(lines) == 1 and lines[0].startswith(f"vt-refine {argv[0]}: error: "), err
    assert "Traceback" not in err
    after = {p: p.stat().st_mtime_ns for p in before}
    assert after == before  # nothing that existed was touched


def test_every_command_has_rows_for_its_bad_inputs():
    """The README's table and this sweep stay complete: each command is tried with each kind of bad input that
    applies to it."""
    kinds = {
        "collect": {"unknown task", "wrong type", "negative count", "truncated HDF5 to append to",
                    "demo file of another task", "unwritable output", "cuda without a GPU"},
        "pretrain": {"unknown task", "wrong type", "negative count", "missing dataset", "truncated HDF5",
                     "demos of another task", "unwritable output", "cuda without a GPU"},
        "finetune": {"unknown task", "wrong type", "negative count", "missing checkpoint", "corrupt checkpoint",
                     "checkpoint of another task", "unwritable output", "cuda without a GPU"},
        "evaluate": {"unknown task", "wrong type", "negative count", "missing checkpoint", "corrupt checkpoint",
                     "checkpoint of another task", "unwritable output", "cuda without a GPU"},
        "pipeline": {"unknown task", "wrong type", "negative count", "unwritable output", "cuda without a GPU"},
        "benchmark": {"unknown task", "wrong type", "negative count", "unwritable output", "cuda without a GPU"},
    }
    for command, needed in kinds.items():
        have = {case.split("/", 1)[1] for case in CASES if case.startswith(command + "/")}
        assert needed <= have, (command, needed - have)


def test_readme_table_lists_every_row(repo_root):
    readme = (repo_root / "README.md").read_text()
    for case in CASES:
        command, kind = case.split("/", 1)
        assert f"| `{command}` | {kind} |" in readme, case
