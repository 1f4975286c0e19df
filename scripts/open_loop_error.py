#!/usr/bin/env python3
"""How far a pre-trained policy's chunks are from held-out demonstrations, per task phase, in mm; prints JSON.

Open-loop check of behaviour cloning before spending simulator time: for demo windows of each phase (approach,
grasp, lift, align, insert, from the expert's phase recorded in the demos) it samples one chunk per window and
reports the distance between predicted and demonstrated pad centres (forward kinematics of the joint targets)
and finger openings, in mm over the executed steps, next to a reference that repeats the demo's first action.
Give demos the policy was not trained on (collect them with another --seed). See ``vt_refine.app.open_loop``.

Example:
    vt-refine collect --task VTRefine-PegInHole-Aloha --num_demos 5 --seed 99 --output heldout.hdf5
    python scripts/open_loop_error.py runs/.../pretrain/vt/checkpoints/final.pt heldout.hdf5
    python scripts/open_loop_error.py CKPT heldout.hdf5 --modality visual --samplers ddim ddpm --windows 32
"""

from __future__ import annotations

import argparse
import json
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="pre-trained policy checkpoint (.pt)")
    parser.add_argument("datasets", nargs="+", help="held-out demo HDF5 file(s) of the policy's task")
    parser.add_argument("--modality", choices=["vt", "visual"], default="vt",
                        help="visual drops the tactile points from the cloud, as the -Visual tasks do")
    parser.add_argument("--samplers", nargs="+", choices=["ddim", "ddpm"], default=["ddim"])
    parser.add_argument("--windows", type=int, default=64, help="demo windows scored per phase")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noises", type=int, default=1,
                        help="initial noises per window; > 1 also reports the error of their mean chunk (the policy's "
                             "bias) and their spread around it")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.windows < 1 or args.noises < 1:
        print("open_loop_error: error: --windows and --noises must be at least 1", file=sys.stderr)
        return 2

    from vt_refine.data.demo_dataset import DemoChunkDataset
    from vt_refine.app.open_loop import open_loop_report
    from vt_refine.policies.diffusion import CheckpointError
    from vt_refine.policies.diffusion.checkpoint import load_policy
    from vt_refine.app.pretrain import VisualOnly
    from vt_refine.utils.errors import UserError

    try:
        policy = load_policy(args.checkpoint)
        full = DemoChunkDataset(args.datasets, ["point_cloud", "joint_pos", "states/expert_phase"],
                                obs_steps=policy.cfg.obs_steps, horizon=policy.cfg.horizon_steps)
        phases = full.obs.pop("expert_phase")[:, 0]  # (N,): the expert's phase at each window's step
        dataset = VisualOnly(full) if args.modality == "visual" else full
        dataset.check_shapes({**policy.cfg.obs_shapes, "actions": policy.cfg.action_shape})
    except (CheckpointError, UserError, FileNotFoundError) as error:
        print(f"open_loop_error: error: {error} (demos collected before the expert recorded its phase: "
              "collect new ones)" if "expert_phase" in str(error) else f"open_loop_error: error: {error}",
              file=sys.stderr)
        return 2
    report = open_loop_report(policy, dataset, phases, args.windows, args.samplers, args.seed, args.noises)
    report = {"checkpoint": args.checkpoint, "datasets": args.datasets, "modality": args.modality, **report}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
