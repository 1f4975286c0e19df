"""The crash-safe writer of demonstration files (layout and crash-safety scheme: :mod:`.hdf5_dataset`)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..utils.atomic import atomic_path
from ..utils.closing import ClosesOnExit
from ..utils.errors import UserError
from .hdf5_dataset import FORMAT_VERSION, DemoReader, Episode, Schema, demo_index, format_entry, format_schema

__all__ = ["DemoWriter"]

_ROBOMIMIC_ENV_TYPE = 2  # Isaac Lab writes env_args["type"] = 2 (robomimic's gym env type); we match it
_RESERVED_ATTRS = ("num_samples", "success", "seed")
_GZIP_LEVEL = 2  # Isaac Lab's default compression_opts


class DemoWriter(ClosesOnExit):
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
                        diffs.append(f"{p}: file {format_entry(have)}, this run {format_entry(want)}")
                raise UserError(f"demo file {self.path} has another per-step layout than this run "
                                f"({'; '.join(diffs)}); use another output file or the matching settings")
            indices = [demo_index(n) for n in reader.episode_names]
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
                            f"unexpected {extra or 'nothing'} (file layout: {format_schema(self.schema)})")
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


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "tolist"):  # torch tensors
        return obj.tolist()
    return str(obj)


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
