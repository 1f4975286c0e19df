"""Thin entry point: `python scripts/finetune.py ...` is `vt-refine finetune ...` (see `--help`)."""

import sys

from vt_refine.app.cli import main

if __name__ == "__main__":
    sys.exit(main(["finetune", *sys.argv[1:]]))
