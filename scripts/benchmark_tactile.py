#!/usr/bin/env python
"""Time TaxelForceModel.compute against the bare Warp mesh-query floor; print JSON.

    python scripts/benchmark_tactile.py [--device cpu|cuda] [--envs 1 4 16 64] [--repeats 20] [--env-step-envs 16]

What each figure means: ``vt_refine.app.benchmarks.tactile``, which does the work.
"""

from __future__ import annotations

import argparse
import json
import sys

from vt_refine.sensors.piezo_tactile.kernels import SIGN_METHODS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--sign-method", default="normal", choices=sorted(SIGN_METHODS))
    parser.add_argument("--env-step-envs", type=int, default=16, help="num_envs of the env-step split (0: skip)")
    parser.add_argument("--env-step-steps", type=int, default=80, help="control steps timed in the env-step split")
    parser.add_argument("--task", default="VTRefine-PegInHole-Aloha", help="task of the env-step split")
    args = parser.parse_args(argv)
    from vt_refine.app.benchmarks.tactile import benchmark_tactile

    report = benchmark_tactile(args.envs, args.repeats, args.sign_method, args.device, args.env_step_envs,
                               args.env_step_steps, args.task)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
