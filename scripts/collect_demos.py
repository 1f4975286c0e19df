"""Thin entry point: `python scripts/collect_demos.py ...` is `vt-refine collect ...` (see `--help`)."""

import sys

from vt_refine.app.cli import main

if __name__ == "__main__":
    sys.exit(main(["collect", *sys.argv[1:]]))
