#!/usr/bin/env python3
"""How far a pre-trained policy's chunks are from the demonstrations it was trained on; prints JSON.

Open-loop check of behaviour cloning, before spending simulator time on a closed-loop evaluation: for
random training windows (observation history -> demo action chunk) it samples one chunk per window and
reports the mean absolute error over the executed steps (Te) in the policy's normalised action units
([-1, 1] spans each action's range in the data), per sampler, next to two references: predicting the
data's mean action, and repeating the demo's own first action of the chunk (what a policy that only
tracks the current target would score). A policy whose error is near the mean-action reference has not
learned to read its observations.

Example:
    python scripts/open_loop_error.py runs/.../pretrain/vt/checkpoints/final.pt runs/.../demos/demos.hdf5
    python scripts/open_loop_error.py CKPT DEMOS --modality visual --samplers ddim ddpm --windows 256
"""

from __future__ import annotations

import argparse
import json
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="pre-trained policy checkpoint (.pt)")
    parser.add_argument("datasets", nargs="+", help="demo HDF5 file(s) it was trained on")
    parser.add_argument("--modality", choices=["vt", "visual"], default="vt",
                        help="visual drops the tactile points from the cloud, as the -Visual tasks do")
    parser.add_argument("--samplers", nargs="+", choices=["ddim", "ddpm"], default=["ddim"])
    parser.add_argument("--windows", type=int, default=128, help="random training windows to score")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.windows < 1:
        print("open_loop_error: error: --windows must be at least 1", file=sys.stderr)
        return 2
    import torch

    from vt_refine.policies.diffusion import CheckpointError
    from vt_refine.policies.diffusion.checkpoint import load_policy
    from vt_refine.training import _dataset
    from vt_refine.utils.errors import UserError

    try:
        policy = load_policy(args.checkpoint)
        dataset = _dataset(args.datasets, policy.cfg, args.modality)
        dataset.check_shapes({**policy.cfg.obs_shapes, "actions": policy.cfg.action_shape})
    except (CheckpointError, UserError, FileNotFoundError) as error:
        print(f"open_loop_error: error: {error}", file=sys.stderr)
        return 2
    generator = torch.Generator().manual_seed(args.seed)
    index = torch.randint(0, len(dataset), (args.windows,), generator=generator)
    items = [dataset[int(i)] for i in index]
    obs = {key: torch.stack([item["obs"][key] for item in items]) for key in items[0]["obs"]}
    demo = policy.action_normalizer.normalize(torch.stack([item["actions"] for item in items]))  # (B, Ta, Da)
    executed = policy.cfg.act_steps

    def error(chunks: torch.Tensor) -> float:
        return round(float((chunks - demo)[:, :executed].abs().mean()), 4)

    report = {"checkpoint": args.checkpoint, "windows": args.windows, "executed_steps": executed,
              "units": "normalised action units, [-1, 1] = the data's range per action",
              "mean_abs_error": {}}
    for sampler in args.samplers:
        # evaluation's setting: DDIM noise-free, DDPM with its posterior noise
        chunks = policy.predict_chunk(obs, sampler=sampler, deterministic=True,
                                      generator=torch.Generator().manual_seed(args.seed))
        report["mean_abs_error"][sampler] = error(policy.action_normalizer.normalize(chunks))
    report["reference_mean_action"] = error(demo.mean(dim=(0, 1), keepdim=True).expand_as(demo))
    report["reference_repeat_first_action"] = error(demo[:, :1].expand_as(demo))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
