"""Thin entry point: `python scripts/benchmark.py ...` is `vt-refine benchmark ...` (see `--help`)."""

import sys

from vt_refine.app.cli import main

if __name__ == "__main__":
    sys.exit(main(["benchmark", *sys.argv[1:]]))
