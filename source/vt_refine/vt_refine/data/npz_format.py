"""Import/export of the VT-Refine / DPPO release format: one flat .npz of trajectories plus a normaliser .npz.

Symbols used in shapes:
    N     trajectories (episodes)
    sumT  steps over all trajectories (sum of traj_lengths)
    Da    action dim (16)
    Dq    joint dim (16)
    Np    points per cloud
    C     point channels (5)

Data file (``train.npz``), the layout DPPO's ``StitchedSequenceDataset`` reads::

    traj_lengths   (N,) int64           steps of every trajectory
    actions        (sumT, Da) float32   min-max normalised to [-1, 1]
    joint_states   (sumT, Dq) float32   min-max normalised to [-1, 1]
    point_cloud    (sumT, Np, C)        optional, other observation keys likewise; not normalised (metres)
    traj_success   (N,) bool            ours, ignored by DPPO: success flag of every trajectory
    traj_seeds     (N,) int64           ours: reset seed of every trajectory, -1 if unknown
    env_args       () str               ours: JSON of the demo file's env_args (task id, cfg summary)

Arrays are stitched in trajectory order: steps traj_lengths[:i].sum() .. traj_lengths[:i+1].sum()-1 are
trajectory i.

Normaliser file (``normalization.npz``) holds both spellings of the same statistics (per-dim, last axis):

    stats.<key>.min / stats.<key>.max   for every normalised key -- the VT-Refine release spelling
    action_min / action_max             = stats.actions.*       -- DPPO's spelling (script/dataset/
    obs_min / obs_max                   = stats.joint_states.*     process_robomimic_dataset.py)

On import both are accepted (``stats.<key>.*`` first; DPPO's ``action_*`` for "actions" and ``obs_*``
for "joint_states" or DPPO's "states").

Normalisation: x_n = 2 (x - min) / (max - min) - 1, inverse x = (x_n + 1) / 2 (max - min) + min,
computed in float64. A constant dimension (max == min) maps to 0 and back to min exactly. DPPO
un-normalises actions with the same inverse; its observation normalisation adds 1e-6 to max - min,
which changes values by a relative 1e-6 / (max - min) (negligible for joint ranges of 0.01 rad and more).

HDF5 <-> npz keys are given by ``key_map`` (dataset path in the demo file -> npz key); the same map
serves both directions.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..utils.atomic import atomic_path
from ..utils.errors import UserError
from .demo_writer import DemoWriter
from .hdf5_dataset import DemoReader, Episode

__all__ = ["DEFAULT_KEY_MAP", "DEFAULT_NORMALIZED_KEYS", "export_npz", "import_npz", "load_normalizer",
           "normalize", "unnormalize"]

DEFAULT_KEY_MAP: dict[str, str] = {
    "actions": "actions",
    "obs/joint_pos": "joint_states",
    "obs/point_cloud": "point_cloud",
}
"""Demo-file dataset path -> npz key; with the default map, point_cloud is optional (skipped if absent)."""
_OPTIONAL_DEFAULT_PATHS = ("obs/point_cloud",)

DEFAULT_NORMALIZED_KEYS: tuple[str, ...] = ("actions", "joint_states")
"""npz keys stored min-max normalised to [-1, 1]."""

_DPPO_ALIASES = {"actions": "action", "joint_states": "obs", "states": "obs"}  # npz key -> DPPO stats prefix
_TRAJ_EXTRAS = ("traj_lengths", "traj_success", "traj_seeds", "env_args")


# ------------------------------------------------------------------------------------------ maths
def normalize(x: np.ndarray, data_min: np.ndarray, data_max: np.ndarray) -> np.ndarray:
    """Map each dim of x (..., D) from [min, max] to [-1, 1] (float64); constant dims map to 0."""
    lo, hi = np.asarray(data_min, np.float64), np.asarray(data_max, np.float64)
    span = hi - lo
    safe = np.where(span > 0, span, 1.0)  # avoid 0/0 in constant dims; they are overwritten below
    out = 2.0 * (np.asarray(x, np.float64) - lo) / safe - 1.0
    return np.where(span > 0, out, 0.0)


def unnormalize(x_n: np.ndarray, data_min: np.ndarray, data_max: np.ndarray) -> np.ndarray:
    """Inverse of ``normalize`` (float64): (x_n + 1) / 2 (max - min) + min."""
    lo, hi = np.asarray(data_min, np.float64), np.asarray(data_max, np.float64)
    return (np.asarray(x_n, np.float64) + 1.0) * 0.5 * (hi - lo) + lo


# ------------------------------------------------------------------------------------------ helpers
def _resolve_key_map(key_map: Mapping[str, str] | None) -> tuple[dict[str, str], set[str]]:
    """(dataset path -> npz key, optional paths)."""
    if key_map is None:
        return dict(DEFAULT_KEY_MAP), set(_OPTIONAL_DEFAULT_PATHS)
    key_map = dict(key_map)
    if "actions" not in key_map:
        raise UserError(f"key_map must map 'actions' (the demo file's action dataset) to an npz key; got {key_map}")
    for path, key in key_map.items():
        if path != "actions" and not path.startswith(("obs/", "states/")):
            raise UserError(f"key_map entry '{path}' must be 'actions', 'obs/<key>' or 'states/<key>'")
        if key in _TRAJ_EXTRAS or "/" in key:
            raise UserError(f"key_map maps '{path}' to '{key}', which is reserved or invalid as an npz key")
    if len(set(key_map.values())) != len(key_map):
        raise UserError(f"key_map maps two dataset paths to the same npz key: {key_map}")
    return key_map, set()


def _save_npz(path: Path, arrays: Mapping[str, np.ndarray], compress: bool) -> None:
    """Atomic np.savez (a file object, so numpy does not append a second .npz suffix)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            (np.savez_compressed if compress else np.savez)(f, **arrays)


def _load_npz(path: str | os.PathLike, what: str) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist; check the path")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise UserError(f"{what} {path} is not a readable .npz file ({err}); it is truncated, corrupt or of "
                        "another format -- re-export or re-download it") from None


def load_normalizer(path: str | os.PathLike, keys: Sequence[str] | None = None,
                    key_map: Mapping[str, str] | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Statistics of a normaliser .npz as {npz key: {"min": (D,), "max": (D,)}}.

    Args:
        path: Normaliser file (``stats.<key>.min/max`` and/or DPPO's ``action_*`` / ``obs_*``).
        keys: npz keys that must be present (UserError otherwise); None returns whatever is there.
        key_map: If given (dataset path -> npz key), the result is keyed by the demo-file key instead
            ("joint_states" -> "joint_pos"), the format ``DiffusionPolicy.from_stats`` takes.
    """
    raw = _load_npz(path, "normaliser file")
    stats: dict[str, dict[str, np.ndarray]] = {}
    for name in raw:
        if name.startswith("stats.") and name.endswith((".min", ".max")):
            key, bound = name[len("stats."):-4], name[-3:]
            stats.setdefault(key, {})[bound] = np.asarray(raw[name])
    wanted = set(keys or ()) | set((key_map or {}).values())  # obs_* may stand for "joint_states" or "states"
    for key, prefix in _DPPO_ALIASES.items():
        if wanted and key not in wanted:
            continue
        if key not in stats and f"{prefix}_min" in raw and f"{prefix}_max" in raw:
            stats[key] = {"min": np.asarray(raw[f"{prefix}_min"]), "max": np.asarray(raw[f"{prefix}_max"])}
    for key, group in stats.items():
        if set(group) != {"min", "max"}:
            raise UserError(f"normaliser file {path} has stats.{key}.{next(iter(group))} but not the other bound")
        if group["min"].shape != group["max"].shape:
            raise UserError(f"normaliser file {path}: stats of '{key}' have min shape {group['min'].shape} but max "
                            f"shape {group['max'].shape}")
    for key in keys or ():
        if key not in stats:
            alias = _DPPO_ALIASES.get(key)
            alt = f" or {alias}_min/{alias}_max" if alias else ""
            raise UserError(f"normaliser file {path} has no statistics of '{key}' (stats.{key}.min/max{alt}); "
                            f"it holds {sorted(raw)}")
    if key_map is not None:
        inverse = {npz: path_.split("/")[-1] for path_, npz in key_map.items()}
        stats = {inverse.get(k, k): v for k, v in stats.items()}
    return stats


# ------------------------------------------------------------------------------------------ export
def export_npz(
    demo_h5: str | os.PathLike | Sequence[str | os.PathLike],
    out_npz: str | os.PathLike,
    out_normalizer: str | os.PathLike,
    key_map: Mapping[str, str] | None = None,
    *,
    normalize_keys: Sequence[str] = DEFAULT_NORMALIZED_KEYS,
    success_only: bool = False,
    compress: bool = True,
) -> dict[str, Any]:
    """Write demo file(s) as a VT-Refine/DPPO .npz plus its normaliser .npz.

    Args:
        demo_h5: One demo file or several (episodes are stitched in file, then episode order).
        out_npz: Data file to write (replaced atomically).
        out_normalizer: Normaliser file to write (replaced atomically).
        key_map: Dataset path -> npz key; default ``DEFAULT_KEY_MAP``.
        normalize_keys: npz keys to min-max normalise to [-1, 1] (their statistics go to the normaliser).
        success_only: Export only episodes whose ``success`` attribute is true.
        compress: np.savez_compressed (DPPO's choice) rather than np.savez.

    Returns:
        Summary {"num_trajectories", "num_steps", "keys", "stats"} (stats in env units, by npz key).
    """
    key_map, optional = _resolve_key_map(key_map)
    paths = [demo_h5] if isinstance(demo_h5, (str, os.PathLike)) else list(demo_h5)
    if not paths:
        raise UserError("export_npz needs at least one demo file")
    parts: dict[str, list[np.ndarray]] | None = None
    lengths: list[int] = []
    successes: list[bool] = []
    seeds: list[int] = []
    env_args: dict[str, Any] = {}
    for path in paths:
        with DemoReader(path) as reader:
            env_args = env_args or reader.env_args
            if parts is None:  # the first file fixes which optional keys are exported
                used = {p: k for p, k in key_map.items() if p in reader.schema or p not in optional}
                missing = [p for p in used if p not in reader.schema]
                if missing and reader.num_episodes():
                    raise UserError(f"demo file {path} has no {missing}; it holds {reader.keys} -- fix key_map")
                parts = {p: [] for p in used}
            missing = [p for p in parts if p not in reader.schema]
            if missing and reader.num_episodes():
                raise UserError(f"demo file {path} has no {missing} (the first file {paths[0]} has); export files "
                                "of one layout together")
            ep_success, ep_seeds = reader.successes(), reader.seeds()
            for i, name in enumerate(reader.episode_names):
                if success_only and not ep_success[i]:
                    continue
                for p in parts:
                    parts[p].append(reader.read(name, p))
                lengths.append(reader.lengths[i])
                successes.append(ep_success[i])
                seeds.append(-1 if ep_seeds[i] is None else ep_seeds[i])
    if not lengths or parts is None:
        raise UserError(f"no {'successful ' if success_only else ''}episodes to export in "
                        f"{', '.join(map(str, paths))}")
    used = {p: key_map[p] for p in parts}
    unknown = [k for k in normalize_keys if k not in used.values()]
    if unknown:
        raise UserError(f"normalize_keys {unknown} are not exported npz keys ({sorted(used.values())})")

    out: dict[str, np.ndarray] = {"traj_lengths": np.asarray(lengths, dtype=np.int64)}
    normaliser: dict[str, np.ndarray] = {}
    stats: dict[str, dict[str, np.ndarray]] = {}
    for path, key in used.items():
        data = np.concatenate(parts[path])  # (sumT, ...)
        if key in normalize_keys:
            if data.dtype.kind != "f":
                raise UserError(f"'{path}' has dtype {data.dtype}; only floating data can be normalised -- "
                                "remove its npz key from normalize_keys")
            flat = data.reshape(-1, data.shape[-1]) if data.ndim > 1 else data.reshape(-1, 1)
            lo, hi = flat.min(axis=0), flat.max(axis=0)  # data dtype: exactly the stored extremes
            stats[key] = {"min": lo, "max": hi}
            normaliser[f"stats.{key}.min"], normaliser[f"stats.{key}.max"] = lo, hi
            alias = _DPPO_ALIASES.get(key)
            if alias and f"{alias}_min" not in normaliser:
                normaliser[f"{alias}_min"], normaliser[f"{alias}_max"] = lo, hi
            data = normalize(data, lo, hi).astype(data.dtype)
        out[key] = data
    out["traj_success"] = np.asarray(successes, dtype=bool)
    out["traj_seeds"] = np.asarray(seeds, dtype=np.int64)
    out["env_args"] = np.asarray(json.dumps(env_args))  # 0-d unicode array: loads without pickle
    _save_npz(Path(out_npz), out, compress)
    _save_npz(Path(out_normalizer), normaliser, compress=False)
    return {"num_trajectories": len(lengths), "num_steps": int(sum(lengths)), "keys": sorted(used.values()),
            "stats": stats}


# ------------------------------------------------------------------------------------------ import
def import_npz(
    npz: str | os.PathLike,
    normalizer: str | os.PathLike | None,
    out_h5: str | os.PathLike,
    task: str,
    key_map: Mapping[str, str] | None = None,
    *,
    normalize_keys: Sequence[str] = DEFAULT_NORMALIZED_KEYS,
    env_args: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    compression: str | None = "gzip",
) -> int:
    """Write a VT-Refine/DPPO .npz as a demo file (Isaac Lab layout), un-normalising to env units.

    Args:
        npz: Data file (``traj_lengths`` and flat per-step arrays).
        normalizer: Normaliser file with the statistics of ``normalize_keys``; None if nothing is normalised.
        out_h5: Demo file to write; created all at once (atomically).
        task: Task id stored as env_args["env_name"].
        key_map: Dataset path -> npz key (the same map as for ``export_npz``); default ``DEFAULT_KEY_MAP``.
        normalize_keys: npz keys stored normalised; they are un-normalised with the normaliser's stats.
        env_args: Extra env_args (merged over the ones stored in the npz by ``export_npz``).
        overwrite: Replace an existing ``out_h5`` (otherwise UserError).
        compression: HDF5 compression of the demo file ("gzip", "lzf" or None).

    Returns:
        Number of imported trajectories.

    Raises:
        UserError: missing keys, ``traj_lengths`` not summing to the array lengths, statistics missing or
            of the wrong size, an existing output without ``overwrite``.
    """
    key_map, optional = _resolve_key_map(key_map)
    out_h5 = Path(out_h5)
    if out_h5.exists() and not overwrite:
        raise UserError(f"demo file {out_h5} already exists; delete it, pass overwrite=True, or pick another path")
    raw = _load_npz(npz, "npz file")
    if "traj_lengths" not in raw:
        raise UserError(f"npz file {npz} has no 'traj_lengths' (steps per trajectory); it holds {sorted(raw)}")
    lengths = np.asarray(raw["traj_lengths"])
    if lengths.ndim != 1 or lengths.size == 0 or lengths.dtype.kind not in "iu" or (lengths < 1).any():
        raise UserError(f"npz file {npz}: 'traj_lengths' must be a non-empty 1-D array of positive integers, got "
                        f"shape {lengths.shape} dtype {lengths.dtype}")
    total = int(lengths.sum())
    used = {p: k for p, k in key_map.items() if k in raw or p not in optional}
    missing = [k for k in used.values() if k not in raw]
    if missing:
        raise UserError(f"npz file {npz} has no {missing}; it holds {sorted(raw)} -- fix key_map "
                        "(dataset path -> npz key)")
    for path, key in used.items():
        rows = raw[key].shape[0] if raw[key].ndim else 0
        if rows != total:
            raise UserError(f"npz file {npz}: traj_lengths sum to {total} steps but '{key}' has {rows} rows; "
                            "the file is inconsistent -- re-export it")
    to_unnormalize = [k for k in used.values() if k in normalize_keys]
    stats = load_normalizer(normalizer, keys=to_unnormalize) if to_unnormalize and normalizer is not None else {}
    if to_unnormalize and normalizer is None:
        raise UserError(f"npz keys {to_unnormalize} are stored normalised; pass the normaliser file "
                        "(or normalize_keys=() if they are in env units)")
    arrays: dict[str, np.ndarray] = {}
    for path, key in used.items():
        data = raw[key]
        if key in stats:
            lo, hi = stats[key]["min"].reshape(-1), stats[key]["max"].reshape(-1)
            dim = data.shape[-1] if data.ndim > 1 else 1
            if lo.size != dim:
                raise UserError(f"normaliser {normalizer}: stats of '{key}' have {lo.size} dims but the data has "
                                f"{dim}; use the normaliser exported with this npz")
            data = unnormalize(data, lo, hi).astype(data.dtype if data.dtype.kind == "f" else np.float32)
        arrays[path] = data
    n = lengths.size
    success = np.asarray(raw["traj_success"], bool) if "traj_success" in raw else np.ones(n, bool)
    seeds = np.asarray(raw["traj_seeds"], np.int64) if "traj_seeds" in raw else np.full(n, -1, np.int64)
    if success.shape != (n,) or seeds.shape != (n,):
        raise UserError(f"npz file {npz}: traj_success / traj_seeds must have one entry per trajectory ({n})")
    stored_args: dict[str, Any] = {}
    if "env_args" in raw:
        try:
            stored_args = json.loads(str(raw["env_args"]))
        except json.JSONDecodeError:
            stored_args = {}
    stored_args.update(env_args or {})
    stored_args.pop("env_name", None)
    expected = {path: (arr.shape[1:], arr.dtype) for path, arr in arrays.items()}
    bounds = np.concatenate([[0], np.cumsum(lengths)])

    def episodes() -> Iterator[Episode]:
        for i in range(n):
            a, b = int(bounds[i]), int(bounds[i + 1])
            obs = {p[4:]: arr[a:b] for p, arr in arrays.items() if p.startswith("obs/")}
            states = {p[7:]: arr[a:b] for p, arr in arrays.items() if p.startswith("states/")}
            yield Episode(obs=obs, actions=arrays["actions"][a:b], states=states, success=bool(success[i]),
                          seed=None if seeds[i] < 0 else int(seeds[i]))

    # build the whole file beside the target, then publish it with one rename: all or nothing
    tmp = out_h5.parent / f".{out_h5.name}.import-{os.getpid()}.hdf5"
    try:
        with DemoWriter(tmp, task, stored_args, expected, compression=compression) as writer:
            writer.append_episodes(episodes())
        os.replace(tmp, out_h5)
    finally:
        for leftover in (tmp, tmp.parent / f".{tmp.name}.lock"):
            if leftover.exists():
                leftover.unlink()
    return n
