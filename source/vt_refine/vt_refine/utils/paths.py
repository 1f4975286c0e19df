"""Input files checked at the edge: light (pathlib only), so a bad path is refused before torch or Isaac Lab load."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .errors import UserError


def check_checkpoint_file(path: str | Path) -> Path:
    """The checkpoint file, or a UserError: missing, or a folder (then naming a checkpoint found inside)."""
    path = Path(path)
    if path.is_dir():
        hints = sorted(path.rglob("final.pt")) or sorted(path.glob("model_*.pt"))
        hint = f" (e.g. {hints[0]})" if hints else " (pretrain's checkpoints/final.pt or a DPPO model_<it>.pt)"
        raise UserError(f"checkpoint {path} is a folder; pass a checkpoint file{hint}")
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    return path


def check_dataset_files(paths: Sequence[str | Path]) -> list[Path]:
    """The demo files, or a UserError naming the first that is missing or a folder."""
    if not paths:
        raise UserError("no dataset given: pass one or more demo files (HDF5, written by `vt-refine collect`)")
    for path in map(Path, paths):
        if path.is_dir():
            raise UserError(f"dataset {path} is a folder; pass demo files (HDF5, written by `vt-refine collect`)")
        if not path.is_file():
            raise UserError(f"dataset {path} does not exist; collect demos first (`vt-refine collect`)")
    return [Path(p) for p in paths]


def make_output_dir(path: str | Path) -> Path:
    """Create an output folder (and its parents), or a UserError that says why it cannot be."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create the output folder {path} ({error.strerror}); choose a writable --output") \
            from None
    return path
