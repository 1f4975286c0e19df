"""``vt-refine``: the project's command-line entry point.

Each sub-command parses its arguments here and calls a package function. User errors (unknown task,
missing file, bad value, a GPU asked for on a machine without one) print one line and exit with code 2;
only bugs print tracebacks.
"""

from __future__ import annotations

import argparse
import os
import sys

from .utils.errors import UserError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _add_common(parser: argparse.ArgumentParser, task: bool = True) -> None:
    if task:
        parser.add_argument("--task", default="VTRefine-PegInHole-Aloha", help="registered task id (see `vt-refine tasks`)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda:0 if a GPU is present, else cpu)")
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="random seed")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vt-refine", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("tasks", help="list the registered tasks")

    p = sub.add_parser("demo", help="run the scripted expert on a task for one episode and write a short report")
    _add_common(p)
    p.add_argument("--num_envs", type=_positive_int, default=4)
    p.add_argument("--output", default="outputs", help="output root folder")

    p = sub.add_parser("benchmark", help="env steps per second for several num_envs, printed as JSON")
    _add_common(p)
    p.add_argument("--num_envs", type=_positive_int, nargs="+", default=[1, 4, 16])
    p.add_argument("--steps", type=_positive_int, default=20, help="timed control steps per setting")
    p.add_argument("--output", default=None, help="also write the JSON here")
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


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "tasks":
        from .envs import known_tasks

        for task in known_tasks():
            print(task)
        return 0
    if args.command == "demo":
        from .demo import run_demo

        run_demo(task=args.task, num_envs=args.num_envs, device=args.device, seed=args.seed, output=args.output)
        return 0
    if args.command == "benchmark":
        from .benchmark import run_env_benchmark

        run_env_benchmark(task=args.task, num_envs_list=args.num_envs, device=args.device, steps=args.steps,
                          seed=args.seed, output=args.output)
        return 0
    raise AssertionError(args.command)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
