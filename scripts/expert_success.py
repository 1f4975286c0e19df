"""The scripted expert's success rate per task, judged exactly as demo collection judges it (assembled when the
script ends, after the release), without writing a demo file (``vt_refine.app.collect.expert_success``). Prints
one JSON document.

    python scripts/expert_success.py                                  # all five tasks, 50 episodes each
    python scripts/expert_success.py --tasks VTRefine-PegInHole-Aloha --episodes 20 --num_envs 10
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

ALL_TASKS = ("VTRefine-PegInHole-Aloha", "VTRefine-NutBolt-Aloha", "VTRefine-Bayonet-Aloha",
             "VTRefine-Connector-Aloha", "VTRefine-ShaftCollar-Aloha")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(ALL_TASKS))
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--num_envs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", default=None, help="also write the JSON here")
    parser.add_argument("--recovery_noise", type=float, default=0.0,
                        help="std [rad] of the correlated noise on the executed arm joint targets (recovery demos)")
    parser.add_argument("--overrides", nargs="*", default=[],
                        help="env cfg overrides, e.g. env.task.mesh_dir=DIR (see scripts/write_example_meshes.py)")
    args = parser.parse_args()
    from vt_refine.app.collect import expert_success
    from vt_refine.app.envs import check_task
    from vt_refine.utils.errors import UserError

    try:
        for task in args.tasks:
            check_task(task)
    except UserError as error:
        print(f"expert_success: error: {error}", file=sys.stderr)
        return 2
    with contextlib.redirect_stdout(sys.stderr):  # Isaac Lab's banners; stdout carries only the JSON
        results = [expert_success(t, args.episodes, args.num_envs, args.seed, args.device, args.overrides,
                                  args.recovery_noise) for t in args.tasks]
    print(json.dumps(results, indent=2))
    if args.output:
        from vt_refine.utils.atomic import write_json_atomic

        write_json_atomic(args.output, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
