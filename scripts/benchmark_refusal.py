#!/usr/bin/env python
"""How long `vt-refine` takes to refuse bad input (one line, exit 2); print JSON.

    python scripts/benchmark_refusal.py [--repeats 5]

Each case runs the installed `vt-refine` in a fresh process, as a user would; reported per case: the median wall
time over the repeats (seconds, process start included), the exit code and the one line it printed. Arguments
and paths are checked before the heavy libraries (torch, Warp, Isaac Lab) load, so each should be well under 1 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "unknown task": ["collect", "--task", "VTRefine-Nope-Aloha", "--num_demos", "1", "--output", "{tmp}/d.hdf5"],
    "missing dataset": ["pretrain", "--task", "VTRefine-PegInHole-Aloha", "--dataset", "{tmp}/none.hdf5",
                        "--output", "{tmp}/bc"],
    "missing checkpoint": ["evaluate", "--task", "VTRefine-PegInHole-Aloha", "--checkpoint", "{tmp}/none.pt"],
    "unknown flag": ["evaluate", "--task", "VTRefine-PegInHole-Aloha", "--checkpoint", "x.pt", "--num_ep", "3"],
    "bad number": ["collect", "--task", "VTRefine-PegInHole-Aloha", "--num_demos", "0", "--output", "{tmp}/d.hdf5"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per case (the median is reported)")
    args = parser.parse_args()
    exe = shutil.which("vt-refine") or str(Path(sys.executable).with_name("vt-refine"))
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, argv in CASES.items():
            argv = [a.format(tmp=tmp) for a in argv]
            times, done = [], None
            for _ in range(args.repeats):
                start = time.perf_counter()
                done = subprocess.run([exe, *argv], capture_output=True, text=True)
                times.append(time.perf_counter() - start)
            lines = done.stderr.strip().splitlines()
            out[name] = {"median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3),
                         "exit_code": done.returncode, "stderr_lines": len(lines), "line": lines[-1] if lines else ""}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
