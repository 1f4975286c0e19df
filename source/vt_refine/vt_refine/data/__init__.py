"""Demonstrations: HDF5 demo files (Isaac Lab recorder layout), training windows, VT-Refine/DPPO .npz.

- ``hdf5_dataset``: the file layout and ``DemoReader``; ``demo_writer``: ``DemoWriter`` (crash-safe append of whole
  episodes).
- ``demo_dataset``: ``DemoChunkDataset``, (obs history, action chunk) samples and min-max ``stats()``.
- ``npz_format``: ``export_npz`` / ``import_npz`` of the normalised release format.

Importing this package loads numpy only; torch and h5py are imported by the modules that need them.
May import ``utils`` only.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DemoWriter", "DemoReader", "Episode", "DemoChunkDataset", "export_npz", "import_npz",
           "load_normalizer"]

_WHERE = {
    "DemoWriter": "demo_writer", "DemoReader": "hdf5_dataset", "Episode": "hdf5_dataset",
    "DemoChunkDataset": "demo_dataset",
    "export_npz": "npz_format", "import_npz": "npz_format", "load_normalizer": "npz_format",
}


def __getattr__(name: str) -> Any:
    """Lazy import so ``import vt_refine.data`` stays cheap for command-line tools."""
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
