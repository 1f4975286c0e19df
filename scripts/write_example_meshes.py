#!/usr/bin/env python3
"""Write the worked example of the real-mesh path (a flanged tube with a knob, a bulb-shaped socket: not prism
stacks, stored as scaled mm files with an off-centre origin) and print the env.task overrides that load it.

Example:
    python scripts/write_example_meshes.py /tmp/flanged
    python scripts/expert_success.py --tasks VTRefine-Bayonet-Aloha --episodes 20 \\
        --overrides $(python scripts/write_example_meshes.py /tmp/flanged)
"""

from __future__ import annotations

import argparse


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="where to write tube_plug.obj and bulb_socket.stl")
    args = parser.parse_args()
    from vt_refine.assets.example_meshes import write_flanged_example

    print(" ".join(write_flanged_example(args.folder)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
