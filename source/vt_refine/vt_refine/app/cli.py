"""``vt-refine``: the project's command-line entry point.

Each sub-command parses its arguments here and calls a package function. User errors (unknown task,
missing file, bad value, a GPU asked for on a machine without one) print one line and exit with code 2;
only bugs print tracebacks.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys

from ..utils.errors import UserError
from ..utils.paths import check_checkpoint_file, check_dataset_files


DESCRIPTION = ("VT-Refine on the ALOHA twin: collect expert demos, pre-train a visuo-tactile diffusion policy, "
               "fine-tune it with DPPO, evaluate and report. Runs on the CPU by default when no GPU is present.")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every default, and each option under its underscore name only (the dashed alias works too)."""

    def _format_action_invocation(self, action):
        aliases = {_dashed(o) for o in action.option_strings} - set(action.option_strings[:1])
        shown = [o for o in action.option_strings if o not in aliases]
        if shown != action.option_strings:
            action = argparse.Action(shown, action.dest, nargs=action.nargs, metavar=action.metavar, help=action.help)
        return super()._format_action_invocation(action)

    def _get_help_string(self, action):
        help_text = action.help or ""
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS \
                or "%(default)" in help_text or action.required:
            return help_text
        return f"{help_text} (default: %(default)s)" if help_text else "(default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (exit code 2), like every other user error of the commands; options are
    matched in full (no abbreviations), each ``--a_b`` also accepted as ``--a-b``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def add_argument(self, *names, **kwargs):
        aliases = [_dashed(n) for n in names if _dashed(n) != n and _dashed(n) not in names]
        return super().add_argument(*names, *aliases, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _dashed(option: str) -> str:
    """``--num_envs`` -> ``--num-envs`` (other strings unchanged)."""
    return option[:2] + option[2:].replace("_", "-") if option.startswith("--") else option


def _check_output(path: str | None, option: str, folder: bool = False) -> None:
    """Refuse an output that cannot be written before any work is done (not after a long run); creates nothing."""
    from pathlib import Path

    if path is None:
        return
    target = Path(path)
    if target.exists():
        if folder and not target.is_dir():
            raise UserError(f"{option} {path} is a file, not a folder; choose another {option}")
        if not folder and target.is_dir():
            raise UserError(f"{option} {path} is a folder; give a file name (e.g. {target / 'out.json'})")
    existing = target if folder and target.exists() else target.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{option} {path}: {existing} is a file, not a folder; choose another {option}")
    if not os.access(existing, os.W_OK | os.X_OK) or (target.is_file() and not os.access(target, os.W_OK)):
        raise UserError(f"{option} {path} is not writable (no write permission in {existing}); choose another "
                        f"{option}")


def _int_at_least(low: int):
    """An argparse type: a whole number >= ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected a number >= {low}, got {value}")
        return value

    return parse


_positive_int, _non_negative_int = _int_at_least(1), _int_at_least(0)


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0.0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def _probability(text: str) -> float:
    value = _non_negative_float(text)
    if value > 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {text}")
    return value


def _add_common(parser: argparse.ArgumentParser, task: bool = True) -> None:
    if task:
        parser.add_argument("--task", default="VTRefine-PegInHole-Aloha", help="registered task id (see `vt-refine tasks`)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda:0 if a GPU is present, else cpu)")
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="random seed")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vt-refine", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("tasks", help="list the registered tasks")

    p = sub.add_parser("demo", help="run the scripted expert on a task for one episode and write a short report")
    _add_common(p)
    p.add_argument("--num_envs", type=_positive_int, default=4, help="parallel envs")
    p.add_argument("--output", default="outputs", help="output root folder")

    p = sub.add_parser("collect", help="collect scripted-expert demonstrations into an HDF5 file (resumable)")
    _add_common(p)
    p.add_argument("--num_demos", type=_positive_int, default=30, help="successful demos wanted in the file")
    p.add_argument("--num_envs", type=_positive_int, default=8, help="parallel envs (episodes run in batches of it)")
    p.add_argument("--output", required=True, help="HDF5 file to write (appended to / resumed if it exists)")
    p.add_argument("--keep_failed", action="store_true", help="also keep episodes the expert failed")
    p.add_argument("--recovery_noise", type=_non_negative_float, default=0.0,
                   help="recovery demos: std [rad] of the correlated noise added to the executed arm joint targets "
                        "(the demo records the expert's own action); 0 = off")
    p.add_argument("--place_noise", type=_non_negative_float, default=0.0,
                   help="uniform +- noise [m] per axis on where the left hand sets the socket down (the plug then "
                        "goes to wherever the socket stands); 0 = the expert's one spot")
    p.add_argument("--close_dwell", type=_non_negative_int, default=0,
                   help="control steps the hands wait at their grasp poses, fingers open, before closing; 0 = close "
                        "on arrival")
    p.add_argument("--grasp_noise", type=_non_negative_float, default=0.0,
                   help="uniform +- noise [m] on how deep each hand reaches in along its fingers before closing (the "
                        "parts sit at varied places along the pads); 0 = one spot")
    p.add_argument("--dagger_policy", default=None, metavar="CHECKPOINT",
                   help="a DAgger round: this policy (a checkpoint of the same task) acts and the expert "
                        "labels every step; every episode is kept, so --num_demos counts episodes")
    p.add_argument("--dagger_beta", type=_probability, default=0.5,
                   help="DAgger: probability that a decision (Te steps) of an env runs the expert, not the policy")

    p = sub.add_parser("pretrain", help="behaviour-clone a diffusion policy on demo files")
    _add_common(p)
    p.add_argument("--dataset", nargs="+", required=True, help="one or more demo HDF5 files (mixed)")
    p.add_argument("--modality", choices=["vt", "visual"], default="vt", help="visuo-tactile or visual-only policy")
    p.add_argument("--profile", default="quick", help="quick, paper or a YAML path (config/)")
    p.add_argument("--steps", type=_positive_int, default=None, help="override pretrain.total_steps")
    p.add_argument("--num_demos", type=_positive_int, default=None,
                   help="train on the first N demos of the dataset(s) only (default: all)")
    p.add_argument("--skip_bad_demos", action="store_true",
                   help="leave out demos with NaN/inf values or fewer steps than one action chunk (default: refuse)")
    p.add_argument("--output", required=True, help="run folder (resumed if it holds a checkpoint)")

    p = sub.add_parser("finetune", help="DPPO fine-tuning of a pre-trained checkpoint (same runner as isaaclab train)")
    _add_common(p)
    p.add_argument("--checkpoint", required=True, help="pre-trained checkpoint (pretrain's checkpoints/final.pt)")
    p.add_argument("--num_envs", type=_positive_int, default=None,
                   help="parallel envs of the rollouts (default: the profile's finetune.num_envs)")
    p.add_argument("--max_iterations", type=_positive_int, default=None,
                   help="DPPO iterations, rollout + update (default: the profile's finetune.max_iterations)")
    p.add_argument("--profile", default="quick", help="takes the finetune: section of this profile")
    p.add_argument("--output", required=True, help="run folder (resumed from its newest model_*.pt)")

    p = sub.add_parser("evaluate", help="success rate of a checkpoint over N episodes on fixed seeds (JSON)")
    _add_common(p)
    p.add_argument("--checkpoint", required=True, help="pre-trained (final.pt) or fine-tuned (model_*.pt) checkpoint")
    p.add_argument("--num_episodes", type=_positive_int, default=16, help="episodes (50 for a claim, 95%% CI)")
    p.add_argument("--num_envs", type=_positive_int, default=8, help="parallel envs (episodes run in batches)")
    p.add_argument("--act_steps", type=_positive_int, default=None,
                   help="Te, chunk steps executed per decision (default: the checkpoint's; at most its Ta)")
    p.add_argument("--output", default=None, help="also write the result JSON here")

    p = sub.add_parser("pipeline", help="collect -> pre-train VT + visual -> DPPO both -> evaluate all four -> report")
    _add_common(p)
    p.add_argument("--profile", default="quick", help="quick (CPU minutes) or paper (GPU scale), or a YAML path")
    p.add_argument("--output", default="outputs", help="output root; runs go to <output>/<task>/<profile>-<time>/")
    p.add_argument("--run", default=None, help="resume this run folder explicitly")
    p.add_argument("--new", action="store_true", help="start a new run even if an unfinished one exists")

    p = sub.add_parser("report", help="re-render report.md from a results.json")
    p.add_argument("results", help="path of a pipeline's report/results.json")

    p = sub.add_parser("benchmark", help="env steps per second for several num_envs, printed as JSON")
    _add_common(p)
    p.add_argument("--num_envs", type=_positive_int, nargs="+", default=[1, 4, 16], help="env counts to measure")
    p.add_argument("--steps", type=_positive_int, default=20, help="timed control steps per setting")
    p.add_argument("--output", default=None, help="also write the JSON here")
    p.add_argument("--floor", action="store_true",
                   help="also time the physics alone on the same scene and split the env step into its parts")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except UserError as error:
        print(f"vt-refine {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"vt-refine {args.command}: interrupted; finished work is kept, rerun the same command to resume",
              file=sys.stderr)
        return 130
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        # every file is written to a temporary and renamed: what was finished before the disk filled is intact
        where = f" while writing {error.filename}" if error.filename else ""
        print(f"vt-refine {args.command}: error: no space left on the device{where}; finished work is kept, free "
              "some space and rerun the same command to resume", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    """Every input is checked here, once, before any heavy import: the stages trust their arguments."""
    if getattr(args, "task", None) is not None:  # milliseconds: no Isaac Lab import
        from .envs import check_task

        check_task(args.task)
        if args.command == "pipeline":
            from ..task_ids import Modality, task_for_modality

            for modality in Modality:
                check_task(task_for_modality(args.task, modality))
    checkpoint = None
    if args.command in ("finetune", "evaluate"):
        check_checkpoint_file(args.checkpoint)
    if args.command == "collect" and args.dagger_policy is not None:
        check_checkpoint_file(args.dagger_policy)
    if args.command == "pretrain":
        check_dataset_files(args.dataset)
    for option, folder in (("output", args.command in ("pretrain", "finetune", "pipeline")), ("run", True)):
        if args.command not in ("tasks", "report", "demo"):
            _check_output(getattr(args, option, None), f"--{option}", folder=folder)
    profile = None
    if getattr(args, "profile", None) is not None:
        from .profile import Profile

        profile = Profile.load(args.profile)
    device = None
    if "device" in args:
        from ..utils.device import resolve_device

        device = resolve_device(args.device)
    if args.command in ("finetune", "evaluate"):
        from .checkpoint import Checkpoint

        checkpoint = Checkpoint.open(args.checkpoint).check_task(args.task)
    if args.command == "collect" and args.dagger_policy is not None:
        from .checkpoint import Checkpoint

        checkpoint = Checkpoint.open(args.dagger_policy).check_task(args.task)
    if args.command == "tasks":
        from .envs import known_tasks

        for task in known_tasks():
            print(task)
        return 0
    if args.command == "demo":
        from .demo import run_demo

        run_demo(task=args.task, num_envs=args.num_envs, device=device, seed=args.seed, output=args.output)
        return 0
    if args.command == "collect":
        from .collect import collect_demos

        result = collect_demos(args.task, args.num_demos, args.output, num_envs=args.num_envs, seed=args.seed,
                               device=device, keep_failed=args.keep_failed, recovery_noise=args.recovery_noise,
                               place_noise=args.place_noise, close_dwell=args.close_dwell,
                               grasp_noise=args.grasp_noise, dagger_policy=checkpoint, dagger_beta=args.dagger_beta)
        print(f"[vt-refine collect] {result.demos_in_file} demos in {result.path}; expert success "
              f"{result.successes}/{result.episodes_run} ({result.success_rate:.0%}) in {result.seconds:.0f} s")
        return 0
    if args.command == "pretrain":
        from pathlib import Path

        from .pretrain import run_pretrain

        changes = {"seed": args.seed} | ({"total_steps": args.steps} if args.steps is not None else {})
        result = run_pretrain(args.task, [Path(p) for p in args.dataset], args.output, profile.with_pretrain(**changes),
                              modality=args.modality, device=device, num_demos=args.num_demos,
                              skip_bad_demos=args.skip_bad_demos)
        print(f"[vt-refine pretrain] {result.step} steps; checkpoint {result.final_checkpoint}")
        return 0
    if args.command == "finetune":
        from .finetune import run_finetune

        final = run_finetune(args.task, checkpoint, args.output, profile.finetune, device=device, seed=args.seed,
                             max_iterations=args.max_iterations, num_envs=args.num_envs)
        print(f"[vt-refine finetune] checkpoint {final}")
        return 0
    if args.command == "evaluate":
        import json

        from .evaluate import evaluate_policy

        result = evaluate_policy(args.task, checkpoint, num_episodes=args.num_episodes, num_envs=args.num_envs,
                                 seed=args.seed, device=device, output=args.output, act_steps=args.act_steps)
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    if args.command == "pipeline":
        from .pipeline import run_pipeline

        run_pipeline(args.task, profile, device, output=args.output, seed=args.seed, run=args.run, new=args.new)
        return 0
    if args.command == "report":
        import json
        from pathlib import Path

        from .report import render_markdown

        path = Path(args.results)
        if path.is_dir():
            raise UserError(f"{path} is a folder; pass the results.json inside a run's report/ folder")
        try:
            results = json.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(f"{path} does not exist") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise UserError(f"{path} is not valid JSON ({error}); rerun the pipeline to rewrite it") from None
        required = ("task", "profile", "rows")
        missing = [key for key in required if not isinstance(results, dict) or key not in results]
        if missing:
            raise UserError(f"{path} is not a pipeline results file: it lacks {', '.join(repr(k) for k in missing)}; "
                            "pass <run>/report/results.json") from None
        try:
            markdown = render_markdown(results)
        except (KeyError, TypeError, AttributeError, IndexError, ValueError) as error:
            raise UserError(f"{path} is not a pipeline results file: its {error} entry is missing or malformed; "
                            "pass <run>/report/results.json") from None
        try:
            (path.parent / "report.md").write_text(markdown)
        except OSError as error:
            raise UserError(f"cannot write {path.parent / 'report.md'} ({error.strerror}); make it writable") \
                from None
        print(f"[vt-refine report] wrote {path.parent / 'report.md'}")
        return 0
    if args.command == "benchmark":
        from .benchmark import run_env_benchmark

        run_env_benchmark(task=args.task, num_envs_list=args.num_envs, device=device, steps=args.steps,
                          floor=args.floor,
                          seed=args.seed, output=args.output)
        return 0
    raise AssertionError(args.command)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
