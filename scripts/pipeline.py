"""Thin entry point: `python scripts/pipeline.py ...` is `vt-refine pipeline ...` (see `--help`)."""

import sys

from vt_refine.app.cli import main

if __name__ == "__main__":
    sys.exit(main(["pipeline", *sys.argv[1:]]))
