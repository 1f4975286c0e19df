"""Demonstration files in Isaac Lab's recorder layout (HDF5): the layout and a checked reader (the crash-safe
writer is :mod:`.demo_writer`).

Symbols used in shapes:
    N   episodes in a file
    T   steps of one episode
    Da  action dim (16: joint-position targets of both arms incl. fingers)

Layout (the one ``isaaclab.utils.datasets.HDF5DatasetFileHandler`` writes and reads, so Isaac Lab's
tools -- replay, annotation, Mimic -- open our files and we open theirs)::

    /                       attrs: format_version = 1 (Isaac Lab: quaternions are XYZW)
    /data                   attrs: env_args  JSON string {"env_name": <task id>, "type": 2, ...caller's
                                             cfg summary and seed}
                                   total     sum of T over all episodes (steps)
    /data/demo_<i>          attrs: num_samples  T (steps)
                                   success      bool
                                   seed         int (only if known)
                                   ...          caller's extra attributes
    /data/demo_<i>/actions          (T, Da)
    /data/demo_<i>/obs/<key>        (T, ...) one entry per step
    /data/demo_<i>/states/<key>     (T, ...) optional (privileged / critic state)

Our additions, which Isaac Lab ignores: ``/data`` attributes ``vt_refine_schema`` (JSON
``{path: {"shape": per-step shape, "dtype": name}}``) and ``num_demos`` (episode count).

Crash safety (copy-on-write). HDF5 is not transactional: a process killed while it modifies a file can
leave the superblock, B-trees or free-space metadata half written, and the whole file -- every earlier
episode included -- may no longer open ("truncated file", "bad object header"). SWMR does not help
here: in SWMR mode no new group or dataset may be created, only existing datasets extended. So the
published file is never modified in place. ``append_episode`` copies it to a temporary file in the same
directory, writes the new episode into the copy, closes and fsyncs it, and publishes it with one
``os.replace`` (atomic on POSIX). A kill at any moment therefore leaves either the old file or the new
one, both complete; a leftover temporary file is deleted by the next writer. The price is one file copy
per episode (a sequential read+write, ~0.1-0.5 s for a few hundred MB), small next to the tens of
seconds it takes to simulate a demonstration. A lock file (``.<name>.lock``, ``flock``; the kernel drops
it when the process dies) keeps two writers from racing on the same file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..utils.closing import ClosesOnExit
from ..utils.errors import UserError

__all__ = ["DemoReader", "Episode", "Schema", "FORMAT_VERSION"]

FORMAT_VERSION = 1
"""Isaac Lab's ``format_version`` (1 = XYZW quaternions); version 0 would make its loader convert poses."""

_DEMO_RE = re.compile(r"^demo_(\d+)$")

Schema = dict[str, tuple[tuple[int, ...], np.dtype]]
"""Per-step layout of an episode: dataset path ("actions", "obs/<key>", "states/<key>") -> (shape, dtype)."""


# ------------------------------------------------------------------------------------------ helpers
def _schema_from_json(text: str) -> Schema:
    raw = json.loads(text)
    return {p: (tuple(v["shape"]), np.dtype(v["dtype"])) for p, v in raw.items()}


def format_schema(schema: Schema) -> str:
    return ", ".join(f"{p} {s} {d.name}" for p, (s, d) in sorted(schema.items()))


def format_entry(entry: tuple[tuple[int, ...], np.dtype] | None) -> str:
    return "missing" if entry is None else f"{entry[0]} {entry[1].name}"


def _attr_value(value: Any) -> Any:
    """HDF5 attribute -> plain Python (numpy scalars become int/float/bool, bytes become str)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    return value


def demo_index(name: str) -> int | None:
    match = _DEMO_RE.match(name)
    return int(match.group(1)) if match else None


def _open_h5(path: Path, what: str = "demo file"):
    """Open ``path`` read-only; UserError naming the problem for a missing, foreign or damaged file."""
    import h5py

    if not path.exists():
        raise UserError(f"{what} {path} does not exist; check the path or collect demonstrations first")
    if path.is_dir():
        raise UserError(f"{what} {path} is a directory; pass the .hdf5 file inside it")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        if not h5py.is_hdf5(path):
            raise UserError(f"{what} {path} is not an HDF5 file ({err}); pass a demonstration file written by "
                            "vt_refine or Isaac Lab's recorder") from None
        raise UserError(f"{what} {path} is truncated or corrupt: {err}; re-collect or delete it") from None


# ------------------------------------------------------------------------------------------ episode
@dataclass
class Episode:
    """One demonstration in memory.

    Attributes:
        obs: Per-step observations, key -> array of shape (T, ...).
        actions: Array of shape (T, Da), joint-position targets (rad / m).
        states: Optional per-step states (e.g. critic state), flattened key ("a/b") -> array (T, ...).
        success: Whether the episode ended in a successful assembly.
        seed: Reset seed of the episode, None if unknown.
        attrs: Further attributes of the episode group.
        name: Group name in the file ("demo_3"); empty for an episode not read from a file.
    """

    obs: dict[str, np.ndarray]
    actions: np.ndarray
    states: dict[str, np.ndarray] = field(default_factory=dict)
    success: bool = False
    seed: int | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    @property
    def length(self) -> int:
        """T, number of steps."""
        return int(self.actions.shape[0])


# ------------------------------------------------------------------------------------------ reader
class DemoReader(ClosesOnExit):
    """Read-only view of a demonstration file; arrays are loaded on request.

    Raises UserError (with the path and what to do) for a missing file, a file that is not HDF5, a
    truncated or corrupt file, a file without the ``data`` group, and inconsistent episodes.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._file = _open_h5(self.path)
        try:
            self._load_index()
        except Exception:
            self._file.close()
            raise

    def _load_index(self) -> None:
        import h5py

        f = self._file
        if "data" not in f or not isinstance(f["data"], h5py.Group):
            raise UserError(f"demo file {self.path} has no 'data' group; it is not a demonstration file in "
                            "Isaac Lab's recorder layout")
        self._data = f["data"]
        try:
            self.env_args: dict[str, Any] = json.loads(self._data.attrs.get("env_args", "{}"))
        except (TypeError, json.JSONDecodeError) as err:
            raise UserError(f"demo file {self.path}: data.attrs['env_args'] is not JSON ({err}); "
                            "the file is corrupt -- re-collect or delete it") from None
        try:
            names = [n for n in self._data.keys() if demo_index(n) is not None]
        except (OSError, RuntimeError, KeyError) as err:
            raise UserError(f"demo file {self.path} is truncated or corrupt: {err}; re-collect or delete it") from None
        self.episode_names: list[str] = sorted(names, key=demo_index)
        """Episode group names sorted by index ("demo_0", "demo_1", ...)."""
        schema_json = self._data.attrs.get("vt_refine_schema")
        self.schema: Schema = _schema_from_json(schema_json) if schema_json else {}
        """Per-step layout {path: (shape, dtype)}; from our attribute, else from the first episode."""
        if not self.schema and self.episode_names:
            self.schema = self._episode_schema(self._data[self.episode_names[0]])
        self.lengths: list[int] = [self._episode_length(n) for n in self.episode_names]
        """T of every episode, in ``episode_names`` order (steps)."""

    def _episode_schema(self, group) -> Schema:
        import h5py

        schema: Schema = {}

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                schema[name] = (tuple(obj.shape[1:]), obj.dtype)

        group.visititems(visit)
        return schema

    def _episode_length(self, name: str) -> int:
        group = self._data[name]
        if "actions" not in group:
            raise UserError(f"demo file {self.path}: episode '{name}' has no 'actions' dataset; "
                            "the file is incomplete -- re-collect or delete it")
        length = int(group["actions"].shape[0])
        stated = group.attrs.get("num_samples")
        if stated is not None and int(stated) != length:
            raise UserError(f"demo file {self.path}: episode '{name}' says num_samples={int(stated)} but holds "
                            f"{length} actions; the file is inconsistent -- re-collect or delete it")
        return length

    # ------------------------------------------------------------------ properties
    @property
    def task(self) -> str:
        """Task id the demonstrations were collected in (env_args["env_name"])."""
        return str(self.env_args.get("env_name", ""))

    @property
    def keys(self) -> list[str]:
        """Dataset paths of an episode: "actions", "obs/<key>", "states/<key>"."""
        return sorted(self.schema)

    @property
    def obs_keys(self) -> list[str]:
        """Observation keys (without the "obs/" prefix)."""
        return sorted(p[4:] for p in self.schema if p.startswith("obs/"))

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-step shape of every dataset path (no leading T axis)."""
        return {p: s for p, (s, _) in self.schema.items()}

    @property
    def dtypes(self) -> dict[str, np.dtype]:
        return {p: d for p, (_, d) in self.schema.items()}

    @property
    def total_steps(self) -> int:
        """Sum of T over all episodes."""
        return int(sum(self.lengths))

    def __len__(self) -> int:
        return len(self.episode_names)

    def num_episodes(self) -> int:
        return len(self.episode_names)

    # ------------------------------------------------------------------ access
    def _name(self, episode: int | str) -> str:
        if isinstance(episode, str):
            if episode not in self.episode_names:
                raise UserError(f"demo file {self.path} has no episode '{episode}'; it holds "
                                f"{len(self.episode_names)} episodes ({', '.join(self.episode_names[:5])}"
                                f"{', ...' if len(self.episode_names) > 5 else ''})")
            return episode
        if not -len(self.episode_names) <= episode < len(self.episode_names):
            raise IndexError(f"episode index {episode} out of range for {len(self.episode_names)} episodes "
                             f"in {self.path}")
        return self.episode_names[episode]

    def attrs(self, episode: int | str) -> dict[str, Any]:
        """All attributes of an episode group as plain Python values."""
        return {k: _attr_value(v) for k, v in self._data[self._name(episode)].attrs.items()}

    def successes(self) -> list[bool]:
        """Success flag of every episode (False where the attribute is missing)."""
        return [bool(self._data[n].attrs.get("success", False)) for n in self.episode_names]

    def seeds(self) -> list[int | None]:
        """Reset seed of every episode (None where unknown)."""
        out: list[int | None] = []
        for n in self.episode_names:
            seed = self._data[n].attrs.get("seed")
            out.append(None if seed is None else int(seed))
        return out

    def read(self, episode: int | str, key: str) -> np.ndarray:
        """One array of shape (T, ...) of one episode; ``key`` is a dataset path such as "obs/joint_pos"."""
        name = self._name(episode)
        group = self._data[name]
        if key not in group:
            raise UserError(f"demo file {self.path}: episode '{name}' has no '{key}'; available: "
                            f"{', '.join(self.keys)}")
        try:
            return group[key][()]
        except OSError as err:
            raise UserError(f"demo file {self.path} is truncated or corrupt: reading '{name}/{key}' failed "
                            f"({err}); re-collect or delete it") from None

    def episode(self, episode: int | str) -> Episode:
        """Load one whole episode."""
        name = self._name(episode)
        obs: dict[str, np.ndarray] = {}
        states: dict[str, np.ndarray] = {}
        for path in self._episode_schema(self._data[name]):
            if path.startswith("obs/"):
                obs[path[4:]] = self.read(name, path)
            elif path.startswith("states/"):
                states[path[7:]] = self.read(name, path)
        attrs = self.attrs(name)
        seed = attrs.pop("seed", None)
        success = bool(attrs.pop("success", False))
        attrs.pop("num_samples", None)
        return Episode(obs=obs, actions=self.read(name, "actions"), states=states, success=success,
                       seed=None if seed is None else int(seed), attrs=attrs, name=name)

    def __iter__(self) -> Iterator[Episode]:
        for name in self.episode_names:
            yield self.episode(name)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None  # type: ignore[assignment]

