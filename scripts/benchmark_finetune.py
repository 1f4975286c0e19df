#!/usr/bin/env python3
"""Where a DPPO iteration's time goes: the rollout (env steps, the actor's chunk sampling, the algorithm's
bookkeeping) and the update (PPO epochs), for a pre-trained checkpoint on a task; prints JSON.

The iterations run exactly as ``isaaclab train`` / ``vt-refine finetune`` run them (rsl-rl's runner loop: act ->
env step -> process_env_step, then compute_returns and update), with the profile's fine-tuning settings. The work is
``vt_refine.app.benchmarks.finetune``.

Example:
    python scripts/benchmark_finetune.py --checkpoint runs/bc/checkpoints/final.pt --num_envs 16 --iterations 2
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="pre-trained checkpoint (pretrain's final.pt)")
    parser.add_argument("--task", default="VTRefine-PegInHole-Aloha")
    parser.add_argument("--profile", default="quick", help="profile whose finetune: section is used")
    parser.add_argument("--num_envs", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=2, help="timed iterations (after none: the first counts)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="extra agent overrides, e.g. actor.train_obs_encoder=true algorithm.num_learning_epochs=3")
    parser.add_argument("--output", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    from vt_refine.app.benchmarks.finetune import benchmark_finetune, finetune_runner_cfg
    from vt_refine.app.checkpoint import Checkpoint
    from vt_refine.app.envs import check_task
    from vt_refine.utils.device import resolve_device
    from vt_refine.utils.errors import UserError

    try:
        checkpoint = Checkpoint.open(args.checkpoint).check_task(check_task(args.task))
        report = benchmark_finetune(args.task, checkpoint.pretrained_path, finetune_runner_cfg(args.profile, args.set),
                                    args.num_envs, args.iterations, resolve_device(args.device))
    except UserError as error:
        print(f"benchmark_finetune: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2, default=str))
    if args.output:
        from vt_refine.utils.atomic import write_json_atomic

        write_json_atomic(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
