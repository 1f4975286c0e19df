#!/usr/bin/env python
"""Cost of the point-cloud observation per env step, camera vs mesh source; print JSON.

    python scripts/benchmark_obs.py [--num_envs 16] [--steps 20] [--sources camera mesh] [--resolutions 96x72]

What each figure means: ``vt_refine.app.benchmarks.obs``, which does the work.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="VTRefine-PegInHole-Aloha")
    parser.add_argument("--num_envs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=40, help="expert steps before timing (parts grasped)")
    parser.add_argument("--sources", nargs="+", default=["camera", "mesh"], choices=["camera", "mesh"])
    parser.add_argument("--resolutions", nargs="+", default=["96x72"], help="camera WxH to time")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)

    from vt_refine.app.benchmarks.obs import benchmark_obs
    from vt_refine.app.envs import check_task
    from vt_refine.utils.errors import UserError

    try:
        report = benchmark_obs(check_task(args.task), args.sources, args.resolutions, args.num_envs, args.steps,
                               args.warmup, args.device)
    except UserError as error:
        print(f"benchmark_obs: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
