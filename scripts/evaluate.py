"""Thin entry point: `python scripts/evaluate.py ...` is `vt-refine evaluate ...` (see `--help`)."""

import sys

from vt_refine.app.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
