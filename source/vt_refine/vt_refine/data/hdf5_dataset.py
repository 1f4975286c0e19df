"""Demonstration files in Isaac Lab's recorder layout (HDF5): a crash-safe writer and a checked reader.

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

import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..utils.atomic import atomic_path
from ..utils.errors import UserError

__all__ = ["DemoWriter", "DemoReader", "Episode", "Schema", "FORMAT_VERSION"]

FORMAT_VERSION = 1
"""Isaac Lab's ``format_version`` (1 = XYZW quaternions); version 0 would make its loader convert poses."""

_ROBOMIMIC_ENV_TYPE = 2  # Isaac Lab writes env_args["type"] = 2 (robomimic's gym env type); we match it
_DEMO_RE = re.compile(r"^demo_(\d+)$")
_RESERVED_ATTRS = ("num_samples", "success", "seed")
_GZIP_LEVEL = 2  # Isaac Lab's default compression_opts

Schema = dict[str, tuple[tuple[int, ...], np.dtype]]
"""Per-step layout of an episode: dataset path ("actions", "obs/<key>", "states/<key>") -> (shape, dtype)."""


# ------------------------------------------------------------------------------------------ helpers
def _to_numpy(value: Any, where: str) -> np.ndarray:
    """numpy array from a numpy array, torch tensor (any device) or nested list."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor without importing torch
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except Exception as err:  # ragged lists, objects
        raise UserError(f"{where} is not an array ({type(value).__name__}): {err}") from None


def _flatten(prefix: str, tree: Mapping[str, Any] | None, out: dict[str, Any]) -> dict[str, Any]:
    """{"a": {"b": x}} or {"a/b": x} -> {"<prefix>/a/b": x}; nested dicts are HDF5 sub-groups."""
    for key, value in (tree or {}).items():
        if not isinstance(key, str) or not all(key.split("/")):  # "a/b" is a sub-group path, "a//b" is not
            raise UserError(f"{prefix} key {key!r} is invalid: use non-empty names ('a' or 'a/b')")
        path = f"{prefix}/{key}"
        if isinstance(value, Mapping):
            _flatten(path, value, out)
        else:
            out[path] = value
    return out


def _normalize_schema(expected: Mapping[str, Any]) -> Schema:
    """Validate the ``expected`` argument: {path: (per-step shape, dtype)}."""
    if not isinstance(expected, Mapping) or "actions" not in expected:
        raise UserError("expected must map dataset paths to (per-step shape, dtype) and include 'actions', e.g. "
                        "{'actions': ((16,), 'float32'), 'obs/joint_pos': ((16,), 'float32')}; got "
                        f"{expected!r:.300}")
    schema: Schema = {}
    for path, spec in expected.items():
        if path != "actions" and not (path.startswith("obs/") or path.startswith("states/")):
            raise UserError(f"expected path '{path}' must be 'actions', 'obs/<key>' or 'states/<key>'")
        try:
            shape, dtype = spec
            schema[path] = (tuple(int(d) for d in shape), np.dtype(dtype))
        except (TypeError, ValueError) as err:
            raise UserError(f"expected['{path}'] must be (per-step shape, dtype), e.g. ((16,), 'float32'); "
                            f"got {spec!r}: {err}") from None
    return schema


def _schema_to_json(schema: Schema) -> str:
    return json.dumps({p: {"shape": list(s), "dtype": d.str} for p, (s, d) in sorted(schema.items())})


def _schema_from_json(text: str) -> Schema:
    raw = json.loads(text)
    return {p: (tuple(v["shape"]), np.dtype(v["dtype"])) for p, v in raw.items()}


def _format_schema(schema: Schema) -> str:
    return ", ".join(f"{p} {s} {d.name}" for p, (s, d) in sorted(schema.items()))


def _format_entry(entry: tuple[tuple[int, ...], np.dtype] | None) -> str:
    return "missing" if entry is None else f"{entry[0]} {entry[1].name}"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "tolist"):  # torch tensors
        return obj.tolist()
    return str(obj)


def _attr_value(value: Any) -> Any:
    """HDF5 attribute -> plain Python (numpy scalars become int/float/bool, bytes become str)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    return value


def _demo_index(name: str) -> int | None:
    match = _DEMO_RE.match(name)
    return int(match.group(1)) if match else None


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (power loss); a process kill does not need it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
class DemoReader:
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
            names = [n for n in self._data.keys() if _demo_index(n) is not None]
        except (OSError, RuntimeError, KeyError) as err:
            raise UserError(f"demo file {self.path} is truncated or corrupt: {err}; re-collect or delete it") from None
        self.episode_names: list[str] = sorted(names, key=_demo_index)
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

    def __enter__(self) -> DemoReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


# ------------------------------------------------------------------------------------------ writer
class DemoWriter:
    """Appends complete episodes to a demonstration file; a kill at any moment loses no finished episode.

    Args:
        path: The .hdf5 file; created (with its directory) if missing, appended to if it exists.
        task: Task id (gymnasium id) the demos come from; an existing file must hold the same task.
        env_args: Further JSON-able information stored in data.attrs["env_args"] next to
            ``env_name`` (e.g. {"seed": 0, "cfg": {...summary...}}); kept from the first writer if the file
            exists.
        expected: Per-step layout {dataset path: (shape, dtype)}, paths "actions", "obs/<key>",
            "states/<key>"; e.g. {"actions": ((16,), "float32"), "obs/joint_pos": ((16,), "float32")}.
            An existing file must have exactly this layout; None adopts the layout of an existing file.
        compression: "gzip" (Isaac Lab's default, level 2), "lzf" or None.

    Raises:
        UserError: the existing file is of another task or layout (the message names both sides; the
            file is left untouched), is not HDF5 or is damaged, or another process is writing it.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        task: str,
        env_args: Mapping[str, Any] | None = None,
        expected: Mapping[str, Any] | None = None,
        compression: str | None = "gzip",
    ):
        if not task:
            raise UserError("DemoWriter needs the task id (e.g. 'VT-Refine-Assembly-00186-v0')")
        if compression not in ("gzip", "lzf", None):
            raise UserError(f"compression must be 'gzip', 'lzf' or None, got {compression!r}")
        self.path = Path(path)
        self.task = task
        self.compression = compression
        self.schema: Schema = _normalize_schema(expected) if expected is not None else {}
        self._env_args = {"env_name": task, "type": _ROBOMIMIC_ENV_TYPE, **dict(env_args or {})}
        self._env_args["env_name"] = task  # the task id wins over a stray env_name in env_args
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd: int | None = None
        self._acquire_lock()
        try:
            self._remove_stale_temporaries()
            if self.path.exists():
                self._check_existing()
            elif not self.schema:
                raise UserError(f"demo file {self.path} does not exist yet; pass expected (the per-step layout) "
                                "to create it")
            else:
                self._create_empty()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ set-up
    @property
    def _lock_path(self) -> Path:
        return self.path.parent / f".{self.path.name}.lock"

    def _acquire_lock(self) -> None:
        lock_path = self._lock_path
        while True:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise UserError(f"demo file {self.path} is being written by another process (lock {lock_path} is "
                                "held); wait for it to finish or write to another file") from None
            # the holder deletes the lock file when it closes: a lock taken on a file already deleted is no lock
            try:
                same = os.stat(lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._lock_fd = fd
                return
            os.close(fd)

    def _remove_stale_temporaries(self) -> None:
        """Delete copies left by a writer that was killed before it could publish them (we hold the lock)."""
        for tmp in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            try:
                tmp.unlink()
            except OSError:
                pass

    def _create_empty(self) -> None:
        import h5py

        with atomic_path(self.path) as tmp:
            with h5py.File(tmp, "w") as f:
                f.attrs["format_version"] = FORMAT_VERSION
                data = f.create_group("data")
                data.attrs["total"] = 0
                data.attrs["num_demos"] = 0
                data.attrs["env_args"] = json.dumps(self._env_args, default=_json_default)
                data.attrs["vt_refine_schema"] = _schema_to_json(self.schema)
            os.chmod(tmp, _default_file_mode())  # mkstemp makes 0600; a demo file is as readable as any other
        _fsync_dir(self.path.parent)
        self._next_index = 0
        self._num_episodes = 0
        self._total = 0

    def _check_existing(self) -> None:
        """Refuse a file of another task or layout before anything is written to it."""
        with DemoReader(self.path) as reader:
            if reader.task != self.task:
                raise UserError(f"demo file {self.path} holds demonstrations of task '{reader.task or '<none>'}' "
                                f"but this run collects '{self.task}'; write to another file or collect the same task")
            if not self.schema:  # expected=None: continue with the file's own layout
                if not reader.schema:
                    raise UserError(f"demo file {self.path} has no episodes and no recorded layout; pass expected")
                self.schema = dict(reader.schema)
            if reader.schema and reader.schema != self.schema:
                diffs = []
                for p in sorted(set(reader.schema) | set(self.schema)):
                    have, want = reader.schema.get(p), self.schema.get(p)
                    if have != want:
                        diffs.append(f"{p}: file {_format_entry(have)}, this run {_format_entry(want)}")
                raise UserError(f"demo file {self.path} has another per-step layout than this run "
                                f"({'; '.join(diffs)}); use another output file or the matching settings")
            indices = [_demo_index(n) for n in reader.episode_names]
            self._next_index = (max(indices) + 1) if indices else 0  # type: ignore[type-var]
            self._num_episodes = len(indices)
            self._total = reader.total_steps
            self._env_args = reader.env_args  # keep what the first writer stored

    # ------------------------------------------------------------------ queries
    def num_episodes(self) -> int:
        """Episodes completely written to the file."""
        return self._num_episodes

    def resume_count(self, target: int) -> int:
        """Episodes still to collect to reach ``target`` in all (0 when the file already holds enough)."""
        if target < 0:
            raise UserError(f"target episode count must be >= 0, got {target}")
        return max(0, target - self._num_episodes)

    @property
    def total_steps(self) -> int:
        return self._total

    # ------------------------------------------------------------------ writing
    def _prepare(self, obs: Mapping[str, Any], actions: Any, states: Mapping[str, Any] | None,
                 where: str) -> dict[str, np.ndarray]:
        """Validated arrays {path: (T, ...)} in the file's dtypes."""
        arrays = _flatten("obs", obs, {})
        _flatten("states", states, arrays)
        arrays["actions"] = actions
        missing = sorted(set(self.schema) - set(arrays))
        extra = sorted(set(arrays) - set(self.schema))
        if missing or extra:
            raise UserError(f"{where} does not match the file layout: missing {missing or 'nothing'}, "
                            f"unexpected {extra or 'nothing'} (file layout: {_format_schema(self.schema)})")
        out: dict[str, np.ndarray] = {}
        length = None
        for path in sorted(arrays):
            arr = _to_numpy(arrays[path], f"{where} '{path}'")
            shape, dtype = self.schema[path]
            if arr.ndim < 1 or tuple(arr.shape[1:]) != shape:
                raise UserError(f"{where} '{path}' has shape {tuple(arr.shape)} but the file expects "
                                f"{_step_shape(shape)}")
            if length is None:
                length = arr.shape[0]
            elif arr.shape[0] != length:
                raise UserError(f"{where} '{path}' has {arr.shape[0]} steps but 'actions' and the others have "
                                f"{length}; every array needs one entry per step")
            if arr.dtype != dtype:
                if not np.can_cast(arr.dtype, dtype, casting="same_kind"):
                    raise UserError(f"{where} '{path}' has dtype {arr.dtype} which cannot be stored as "
                                    f"{dtype} (the file's dtype)")
                arr = arr.astype(dtype)
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                step = int(np.argwhere(~np.isfinite(arr.reshape(arr.shape[0], -1)))[0, 0])
                raise UserError(f"{where} '{path}' holds NaN or inf (first at step {step}); drop this episode "
                                "(the simulation probably diverged)")
            out[path] = arr
        if not length:
            raise UserError(f"{where} has no steps; an episode needs at least one step")
        return out

    def append_episode(
        self,
        obs: Mapping[str, Any],
        actions: Any,
        states: Mapping[str, Any] | None = None,
        success: bool = False,
        seed: int | None = None,
        extra_attrs: Mapping[str, Any] | None = None,
    ) -> str:
        """Write one complete episode; returns its group name ("demo_<i>").

        Args:
            obs: key -> array of shape (T, ...) (numpy or torch), one entry per step.
            actions: Array of shape (T, Da), joint-position targets (rad / m).
            states: Optional key -> array (T, ...) (nested dicts become sub-groups).
            success: Whether the episode succeeded.
            seed: Reset seed of the episode (None: not stored).
            extra_attrs: Further attributes of the episode group (numbers, strings, arrays; dicts and
                lists of strings are stored as JSON strings).

        The episode is on disk when this returns; it is all there or not at all after a crash.
        """
        return self.append_episodes([Episode(obs=dict(obs), actions=actions, states=dict(states or {}),
                                             success=success, seed=seed, attrs=dict(extra_attrs or {}))])[0]

    def append_episodes(self, episodes: Iterable[Episode]) -> list[str]:
        """Write several episodes with one file copy (all or none of them reach the file)."""
        import h5py

        if self._lock_fd is None:
            raise UserError(f"DemoWriter for {self.path} is closed; open a new one to append")
        names: list[str] = []
        index, total = self._next_index, self._total
        with atomic_path(self.path) as tmp:
            shutil.copyfile(self.path, tmp)  # copy-on-write: the published file is never opened for writing
            shutil.copymode(self.path, tmp)
            with h5py.File(tmp, "r+") as f:
                data = f["data"]
                for episode in episodes:
                    name = f"demo_{index}"
                    arrays = self._prepare(episode.obs, episode.actions, episode.states, f"episode {name}")
                    self._write_group(data, name, arrays, episode)
                    names.append(name)
                    index += 1
                    total += int(arrays["actions"].shape[0])
                data.attrs["total"] = total
                data.attrs["num_demos"] = self._num_episodes + len(names)
                if "vt_refine_schema" not in data.attrs:  # a file Isaac Lab created: record our layout
                    data.attrs["vt_refine_schema"] = _schema_to_json(self.schema)
        _fsync_dir(self.path.parent)
        self._next_index, self._total = index, total
        self._num_episodes += len(names)
        return names

    def _write_group(self, data, name: str, arrays: dict[str, np.ndarray], episode: Episode) -> None:
        group = data.create_group(name)
        group.attrs["num_samples"] = int(arrays["actions"].shape[0])
        group.attrs["success"] = bool(episode.success)
        if episode.seed is not None:
            group.attrs["seed"] = int(episode.seed)
        for key, value in (episode.attrs or {}).items():
            if key in _RESERVED_ATTRS:
                raise UserError(f"extra attribute '{key}' is reserved; pass it as the {key} argument instead")
            if isinstance(value, (Mapping, list, tuple)) and not _is_numeric_sequence(value):
                value = json.dumps(value, default=_json_default)
            elif hasattr(value, "detach"):
                value = _to_numpy(value, f"extra attribute '{key}'")
            try:
                group.attrs[key] = value
            except (TypeError, ValueError) as err:
                raise UserError(f"extra attribute '{key}' of type {type(value).__name__} cannot be stored in "
                                f"HDF5 ({err}); use a number, string or array") from None
        kwargs: dict[str, Any] = {}
        if self.compression == "gzip":
            kwargs = {"compression": "gzip", "compression_opts": _GZIP_LEVEL}
        elif self.compression == "lzf":
            kwargs = {"compression": "lzf"}
        for path, arr in arrays.items():
            group.create_dataset(path, data=arr, **(kwargs if arr.size > 0 else {}))  # creates obs/, states/

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Release and delete the lock; the file is complete at all times, so there is nothing to flush."""
        if self._lock_fd is not None:
            try:
                self._lock_path.unlink(missing_ok=True)  # while still held: nobody can take it in between
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            finally:
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> DemoWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def _default_file_mode() -> int:
    """0666 minus the process umask (what open() would give a new file)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _step_shape(shape: tuple[int, ...]) -> str:
    """(16,) -> "(T, 16)": the full array shape with the step axis named."""
    return "(" + ", ".join(["T", *map(str, shape)]) + ("," if not shape else "") + ")"


def _is_numeric_sequence(value: Any) -> bool:
    if isinstance(value, Mapping):
        return False
    try:
        return np.asarray(value).dtype.kind in "biuf"
    except Exception:
        return False
