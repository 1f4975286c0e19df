"""Thin entry point: `python scripts/pretrain.py ...` is `vt-refine pretrain ...` (see `--help`)."""

import sys

from vt_refine.app.cli import main

if __name__ == "__main__":
    sys.exit(main(["pretrain", *sys.argv[1:]]))
