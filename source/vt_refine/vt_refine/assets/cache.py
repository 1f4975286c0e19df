"""A small content-addressed cache for generated assets (part meshes now, USD files later).

An entry is a folder named ``<kind>-<digest>`` under :func:`asset_cache_dir`, where the digest hashes
the kind, the build parameters, ``vt_refine.__version__`` and ``GENERATOR_VERSION``. The folder holds
the built files and a ``manifest.json`` that records each file's sha256. An entry counts as valid only
when the manifest lists every requested file with a matching hash, so a half-written, corrupted or
hand-edited entry is rebuilt. Builds run in a temporary sibling folder that is renamed into place, so
readers never see a partial entry and two processes racing on one entry both end with a valid folder
(the loser discards its copy).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import vt_refine

if TYPE_CHECKING:
    from vt_refine.assets.parts import AssemblyGeometry

GENERATOR_VERSION = 3
"""Bump when any asset generator changes its output, so old cache entries are no longer found."""

MANIFEST_NAME = "manifest.json"

_KIND_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_RACE_RETRIES = 3  # rename attempts before giving up when other processes keep replacing the entry


class AssetCacheError(ValueError):
    """Bad arguments to the cache (kind, params or file names)."""


class AssetBuildError(RuntimeError):
    """A build callback that did not write the files it was asked for."""


def asset_cache_dir() -> Path:
    """Root of the asset cache: ``$VT_REFINE_CACHE_DIR`` or ``${XDG_CACHE_HOME:-~/.cache}/vt_refine/assets``."""
    override = os.environ.get("VT_REFINE_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "vt_refine" / "assets"


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays
        return value.tolist()
    raise TypeError(type(value).__name__)


def _canonical_json(obj: Any, what: str) -> str:
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise AssetCacheError(
            f"{what} must be JSON-serialisable (str, int, float, bool, None, lists, dicts, Paths, numpy values): {err}"
        ) from err


def cache_key(kind: str, params: dict) -> str:
    """Folder name of the entry for (kind, params) under the current package and generator versions."""
    if not isinstance(kind, str) or not _KIND_PATTERN.match(kind):
        raise AssetCacheError(f"kind must be a non-empty name of letters, digits, '_', '.' or '-', got {kind!r}.")
    if not isinstance(params, dict):
        raise AssetCacheError(f"params must be a dict, got {type(params).__name__}.")
    payload = {
        "kind": kind,
        "params": params,
        "vt_refine_version": vt_refine.__version__,
        "generator_version": GENERATOR_VERSION,
    }
    digest = hashlib.sha256(_canonical_json(payload, "params").encode()).hexdigest()
    return f"{kind}-{digest[:20]}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_file_names(files: list[str]) -> list[str]:
    if isinstance(files, str) or not files:
        raise AssetCacheError("files must be a non-empty list of file names, e.g. ['plug.ply', 'socket.ply'].")
    for name in files:
        parts = Path(name).parts if isinstance(name, str) else ()
        if not parts or Path(name).is_absolute() or ".." in parts or name == MANIFEST_NAME:
            raise AssetCacheError(
                f"files entry {name!r} must be a relative path inside the entry (not {MANIFEST_NAME})."
            )
    return list(files)


def _is_valid(folder: Path, files: list[str]) -> bool:
    """True when the folder's manifest lists every file with the sha256 the file has now."""
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text())
        recorded = manifest["files"]
        return all(isinstance(recorded.get(name), str) and _sha256(folder / name) == recorded[name] for name in files)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _discard(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def cached_build(kind: str, params: dict, build: Callable[[Path], None], files: list[str]) -> Path:
    """Return a cache folder holding ``files`` built by ``build`` for (kind, params), building it if needed.

    Args:
        kind: asset family, used as the folder prefix (letters, digits, '_', '.', '-').
        params: everything the build depends on; JSON-serialisable. Together with the kind,
            ``vt_refine.__version__`` and ``GENERATOR_VERSION`` it names the entry.
        build: callback that writes every name in ``files`` into the folder it is given (an empty
            temporary folder; it must not keep the path, which is renamed afterwards).
        files: relative names of the files the entry must hold.

    Returns:
        The entry folder. A valid entry is returned without calling ``build``; a missing, half-written
        or corrupt one (unreadable manifest, missing file, wrong hash) is rebuilt.

    Raises:
        AssetCacheError: bad kind, params or file names.
        AssetBuildError: ``build`` did not write one of ``files``.
    """
    files = _check_file_names(files)
    root = asset_cache_dir()
    final = root / cache_key(kind, params)
    if _is_valid(final, files):
        return final
    root.mkdir(parents=True, exist_ok=True)

    for _ in range(_RACE_RETRIES):
        staging = root / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            build(staging)
            missing = [name for name in files if not (staging / name).is_file()]
            if missing:
                raise AssetBuildError(
                    f"build for {kind!r} did not write {missing} into {staging}; it must write all of {files}."
                )
            manifest = {
                "kind": kind,
                "params": json.loads(_canonical_json(params, "params")),
                "vt_refine_version": vt_refine.__version__,
                "generator_version": GENERATOR_VERSION,
                "files": {name: _sha256(staging / name) for name in files},
            }
            # the manifest is written last: a staging folder without one is never taken for an entry
            (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        except BaseException:
            _discard(staging)
            raise

        try:
            os.rename(staging, final)  # atomic; fails when `final` exists and is not empty
            return final
        except OSError:
            pass
        if _is_valid(final, files):  # another process won the race: keep its copy
            _discard(staging)
            return final
        # `final` is a stale or corrupt entry: move it aside (atomic) and put ours in its place
        stale = root / f".{final.name}.stale-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(final, stale)
        except FileNotFoundError:
            pass  # someone else moved it already
        except OSError:
            _discard(staging)
            continue
        try:
            os.rename(staging, final)
        except OSError:
            _discard(staging)  # another process put its entry in between; check it on the next pass
            _discard(stale)
            if _is_valid(final, files):
                return final
            continue
        _discard(stale)
        return final
    raise AssetBuildError(
        f"could not install cache entry {final} after {_RACE_RETRIES} attempts (concurrent writers?)."
    )


def mesh_files(geometry: AssemblyGeometry, file_format: str = "ply") -> tuple[Path, Path]:
    """Write the plug and socket meshes of an assembly into the cache and return (plug_path, socket_path).

    The entry is keyed by the meshes' content (sha256 of vertices and faces), so procedural and loaded
    geometry share this path. Files are binary PLY (default; trimesh writes float32 vertices, ~1e-8 m) or
    OBJ (8 decimals), in metres, in the part frames.
    """
    from vt_refine.assets.parts import mesh_digest  # deferred: parts imports trimesh and shapely

    file_format = file_format.lower()
    if file_format not in ("ply", "obj"):
        raise AssetCacheError(f"file_format must be 'ply' or 'obj', got {file_format!r}.")
    names = [f"plug.{file_format}", f"socket.{file_format}"]
    params = {
        "asset_id": geometry.spec.asset_id,
        "format": file_format,
        "plug_sha256": mesh_digest(geometry.plug),
        "socket_sha256": mesh_digest(geometry.socket),
    }

    def build(folder: Path) -> None:
        export_kwargs = {"encoding": "binary"} if file_format == "ply" else {}
        geometry.plug.export(folder / names[0], file_type=file_format, **export_kwargs)
        geometry.socket.export(folder / names[1], file_type=file_format, **export_kwargs)

    folder = cached_build(f"part_meshes_{geometry.spec.asset_id}", params, build, names)
    return folder / names[0], folder / names[1]
