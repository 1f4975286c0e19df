#!/usr/bin/env python3
"""Benchmark the diffusion policy: chunk inference latency and training step time; prints JSON.

Measures ``predict_chunk`` (joint normalisation + PointNet + U-Net denoising chain + unnormalisation)
for each profile x batch size x sampler (DDPM-K vs DDIM-Kd), and one optimiser step of behaviour
cloning (forward, backward, AdamW). Weights are random: latency does not depend on training. The work is
``vt_refine.app.benchmarks.policy``.

Example:
    python scripts/benchmark_policy.py                       # quick + paper, batch 1 and 16, CPU
    python scripts/benchmark_policy.py --profiles quick --device cuda --output bench.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", nargs="+", default=["quick", "paper"],
                        help="profile names (config/<name>.yaml) or YAML paths")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 16], help="inference batch sizes")
    parser.add_argument("--samplers", nargs="+", default=["ddpm", "ddim"], choices=["ddpm", "ddim"])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per setting (after one warm-up)")
    parser.add_argument("--budget-s", type=float, default=20.0,
                        help="stop repeating a setting once this many seconds were spent on it (>= 1 run)")
    parser.add_argument("--train-batch", type=int, default=32,
                        help="batch of the timed training step, capped by the profile's batch size "
                             "(the paper batch of 256 needs ~15 GB of PointNet activations on CPU)")
    parser.add_argument("--train-repeats", type=int, default=3, help="timed training steps (after one warm-up)")
    parser.add_argument("--skip-train", action="store_true", help="only measure inference")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from vt_refine.app.benchmarks.policy import benchmark_policy

    report = benchmark_policy(args.profiles, args.batch_sizes, args.samplers, repeats=args.repeats,
                              budget_s=args.budget_s, train_batch=args.train_batch, train_repeats=args.train_repeats,
                              skip_train=args.skip_train, device=args.device, threads=args.threads, seed=args.seed)
    text = json.dumps(report, indent=2)
    print(text)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()
