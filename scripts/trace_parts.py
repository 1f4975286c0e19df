#!/usr/bin/env python3
"""Where a peg-in-hole policy puts the parts: socket and plug positions over one batch of evaluation episodes.

The expert sets the socket down at one spot (``ScriptedExpertCfg.socket_place_xy``) and brings the plug over it,
so in the demos both sit within ~1 mm of that spot once the socket is placed. This prints, per episode, how far
the policy's socket is from the spot and how far the plug is from the socket at ``--at_step`` (the demos' set-down
is done by step 100), which tells a plug that misses a well-placed socket from a socket placed elsewhere. With
``--demos`` it prints the same figures for the recorded demos. It also prints how the left hand holds the socket:
the step the socket leaves the table, where in the hand it sits then and at ``--at_step`` (left tool frame: x along
the fingers, y the closing axis, z across the pads), and where the hand is at ``--at_step``. Batch b of
``vt-refine evaluate --seed S`` starts from the same states as ``--seed S+b`` here. See ``vt_refine.app.trace_parts``.

Example:
    python scripts/trace_parts.py bc/checkpoints/final.pt --num_envs 10 --seed 0 --demos peg.hdf5
"""

from __future__ import annotations

import argparse
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint",
                        help="pre-trained or fine-tuned checkpoint of VTRefine-PegInHole-Aloha (or its -Visual)")
    parser.add_argument("--num_envs", type=int, default=10, help="episodes traced (one batch)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--at_step", type=int, default=100, help="control step at which the placement is read")
    parser.add_argument("--demos", default=None, help="demo HDF5 file: print the same figures for its demos")
    parser.add_argument("--output", default=None, help=".npz file for the per-step positions [m]")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.num_envs < 1 or args.at_step < 0:
        print("trace_parts: error: --num_envs must be >= 1 and --at_step >= 0", file=sys.stderr)
        return 2
    import numpy as np

    from vt_refine.app.checkpoint import Checkpoint
    from vt_refine.app.trace_parts import demo_placement_at, trace_policy
    from vt_refine.utils.errors import UserError

    try:
        checkpoint = Checkpoint.open(args.checkpoint)
        demo_rows = demo_placement_at(args.demos, args.at_step) if args.demos else None
        trace = trace_policy(checkpoint, args.num_envs, args.seed)
    except UserError as error:
        print(f"trace_parts: error: {error}", file=sys.stderr)
        return 2
    if args.output:
        np.savez(args.output, plug=trace.plug, socket=trace.socket, done=trace.done, joints=trace.joints)
    print(f"policy, step {args.at_step}: socket off the expert's spot | plug - socket in xy [mm] (ended before: -)")
    for e, row in enumerate(trace.placement_at(args.at_step)):
        print(f"  episode {e}: " + ("-" if row is None else f"{row[0]:5.1f} | {row[1]:5.1f}"))
    print(f"policy, left hand: lift step | socket in hand at the lift | at step {args.at_step} | hand xy at step "
          f"{args.at_step} [mm]")
    for e, hold in enumerate(trace.left_holds(args.at_step)):
        print(f"  episode {e}: {_hold_line(hold)}")
    if demo_rows is not None:
        offs, gaps, holds = demo_rows
        print(f"demos, step {args.at_step}: socket off the spot mean {offs.mean():.1f} max {offs.max():.1f} mm; "
              f"plug - socket mean {gaps.mean():.1f} max {gaps.max():.1f} mm ({len(offs)} demos)")
        lifted = [h for h in holds if h.lift_step is not None]
        if lifted:
            at_lift = np.stack([h.in_hand_at_lift for h in lifted])
            at_step = np.stack([h.in_hand_at_step for h in lifted])
            hand = np.stack([h.tool_xy_at_step for h in lifted])
            print(f"demos, left hand ({len(lifted)} of {len(holds)} lifted): lift step "
                  f"{min(h.lift_step for h in lifted)}-{max(h.lift_step for h in lifted)}; socket in hand at the "
                  f"lift {_mean_sd(at_lift)}, at step {args.at_step} {_mean_sd(at_step)}; hand xy {_mean_sd(hand)}")
    return 0


def _hold_line(hold) -> str:
    """One episode's left hold as a line of mm figures."""
    fmt = lambda v: "(" + ", ".join(f"{x:6.1f}" for x in v) + ")"  # noqa: E731
    lift = "not lifted" if hold.lift_step is None else f"{hold.lift_step:3d} | {fmt(hold.in_hand_at_lift)}"
    return f"{lift} | {fmt(hold.in_hand_at_step)} | {fmt(hold.tool_xy_at_step)}"


def _mean_sd(rows) -> str:
    """Per-axis mean +- standard deviation of rows (N, D) [mm]."""
    return "(" + ", ".join(f"{m:.1f}+-{s:.1f}" for m, s in zip(rows.mean(0), rows.std(0))) + ")"


if __name__ == "__main__":
    sys.exit(main())
