"""Checkpoints of the diffusion policy: atomic writes, validated loads, clear errors.

A checkpoint is one ``torch.save`` file holding only plain python values and tensors (so it loads with
``weights_only=True``): model and EMA weights (normalisers included), optimiser and LR-scheduler state,
the normaliser statistics on their own, the policy and training configs as dicts, the step, the task id,
the observation/action shapes and the vt_refine version.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ... import __version__
from .config import DiffusionPolicyCfg
from .policy import DiffusionPolicy

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "CheckpointCorruptError",
    "CheckpointMismatchError",
    "save_checkpoint",
    "load_checkpoint",
    "load_policy",
]

CHECKPOINT_FORMAT = "vt_refine.diffusion_policy.v1"
_REQUIRED_KEYS = ("format", "vt_refine_version", "policy_cfg", "model", "normalizers", "step", "task_id",
                  "obs_shapes", "action_shape")


class CheckpointError(ValueError):
    """Base class of checkpoint problems."""


class CheckpointCorruptError(CheckpointError):
    """The file cannot be read back (truncated, not a checkpoint, missing entries)."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint is valid but was made for another task or other observation/action shapes."""


def save_checkpoint(
    path: str | Path,
    policy: DiffusionPolicy,
    *,
    ema_policy: DiffusionPolicy | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    train_cfg: Any | None = None,
    step: int = 0,
    task_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (temporary file in the same folder, fsync, ``os.replace``).

    Args:
        path: Destination file; parent folders are created.
        policy: The trained policy (its state_dict includes the normalisers).
        ema_policy: EMA copy of the policy, if any.
        optimizer, scheduler: Saved through their ``state_dict()`` when given.
        train_cfg: Training config (a dataclass with ``to_dict`` or a dict).
        step: Gradient steps done.
        task_id: Task the policy was trained for (e.g. "00186"); None = unspecified.
        extra: More plain values to store (e.g. RNG state, EMA update count).

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = policy.cfg
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "vt_refine_version": __version__,
        "task_id": task_id,
        "step": int(step),
        "policy_cfg": cfg.to_dict(),
        "train_cfg": train_cfg.to_dict() if hasattr(train_cfg, "to_dict") else train_cfg,
        "obs_shapes": {key: list(shape) for key, shape in cfg.obs_shapes.items()},
        "action_shape": list(cfg.action_shape),
        "model": _cpu(policy.state_dict()),
        "ema_model": _cpu(ema_policy.state_dict()) if ema_policy is not None else None,
        "normalizers": {
            "actions": _cpu(policy.action_normalizer.state_dict()),
            "joint_pos": _cpu(policy.joint_normalizer.state_dict()),
        },
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "extra": dict(extra) if extra is not None else {},
    }
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        # a failed write must not leave temporary files behind nor touch the previous checkpoint
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(
    path: str | Path,
    *,
    expected_task_id: str | None = None,
    expected_obs_shapes: Mapping[str, Any] | None = None,
    expected_action_shape: Any | None = None,
    map_location: str | torch.device = "cpu",
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Read and validate a checkpoint (or validate ``payload``, the file's contents already read).

    Args:
        path: Checkpoint file.
        expected_task_id: When given, the checkpoint's task id must equal it.
        expected_obs_shapes: When given, per-key per-sample shapes, e.g. ``{"point_cloud": (2, 2560, 5),
            "joint_pos": (2, 16)}``; each must match the checkpoint's.
        expected_action_shape: When given, (Ta, Da) must match.
        map_location: Device of the loaded tensors.
        payload: The contents of ``path`` when the caller has read it already (the file is not read again).

    Returns:
        The checkpoint dict (see :func:`save_checkpoint`).

    Raises:
        FileNotFoundError: no such file.
        CheckpointCorruptError: truncated or not a vt_refine checkpoint.
        CheckpointMismatchError: other task id or shapes (the message names both sides).
    """
    path = Path(path)
    if payload is None:
        payload = read_checkpoint_file(path, map_location)
    if not isinstance(payload, dict):
        raise CheckpointCorruptError(f"checkpoint {path} is corrupt or incomplete: expected a dict, "
                                     f"got {type(payload).__name__}")
    missing = [key for key in _REQUIRED_KEYS if key not in payload]
    if missing:
        raise CheckpointCorruptError(f"checkpoint {path} is corrupt or incomplete: missing entries {missing}")
    if payload["format"] != CHECKPOINT_FORMAT:
        raise CheckpointCorruptError(
            f"checkpoint {path} has format '{payload['format']}', this vt_refine "
            f"({__version__}) reads '{CHECKPOINT_FORMAT}'; use the matching vt_refine version")

    if expected_task_id is not None and payload["task_id"] != expected_task_id:
        raise CheckpointMismatchError(
            f"checkpoint {path} was trained for task id '{payload['task_id']}' but task id "
            f"'{expected_task_id}' was requested; pick the checkpoint of that task")
    if expected_obs_shapes is not None:
        saved = {key: tuple(shape) for key, shape in payload["obs_shapes"].items()}
        wanted = {key: tuple(shape) for key, shape in expected_obs_shapes.items()}
        if saved != wanted:
            diffs = [f"'{key}': checkpoint {saved.get(key, 'absent')} vs expected {wanted.get(key, 'absent')}"
                     for key in sorted(set(saved) | set(wanted)) if saved.get(key) != wanted.get(key)]
            raise CheckpointMismatchError(
                f"checkpoint {path} observation shapes differ from the expected ones: {'; '.join(diffs)}")
    if expected_action_shape is not None:
        saved_a, wanted_a = tuple(payload["action_shape"]), tuple(expected_action_shape)
        if saved_a != wanted_a:
            raise CheckpointMismatchError(
                f"checkpoint {path} action shape (Ta, Da) = {saved_a} differs from the expected {wanted_a}")
    return payload


def read_checkpoint_file(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """The contents of a torch checkpoint file (tensors and plain containers only: ``weights_only``).

    Raises:
        FileNotFoundError: no such file.
        CheckpointCorruptError: truncated or not a torch file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; check the path or run pre-training first")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for damaged files
        raise CheckpointCorruptError(
            f"checkpoint {path} is corrupt or incomplete: {type(err).__name__}: {err}. "
            "Delete it and resume from an earlier checkpoint or retrain") from err


def load_policy(
    path: str | Path,
    *,
    use_ema: bool = True,
    device: str | torch.device = "cpu",
    expected_task_id: str | None = None,
    expected_obs_shapes: Mapping[str, Any] | None = None,
    expected_action_shape: Any | None = None,
    payload: dict[str, Any] | None = None,
) -> DiffusionPolicy:
    """Rebuild a :class:`DiffusionPolicy` (EMA weights when present and ``use_ema``) in eval mode; ``payload``:
    the file's contents when already read."""
    payload = load_checkpoint(path, expected_task_id=expected_task_id, expected_obs_shapes=expected_obs_shapes,
                              expected_action_shape=expected_action_shape, map_location="cpu", payload=payload)
    try:
        cfg = DiffusionPolicyCfg.from_dict(payload["policy_cfg"], section=f"{Path(path).name}:policy_cfg")
        policy = DiffusionPolicy(cfg)
        state = payload["ema_model"] if use_ema and payload.get("ema_model") is not None else payload["model"]
        policy.load_state_dict(state)
    except (ValueError, RuntimeError, KeyError) as err:
        raise CheckpointCorruptError(f"checkpoint {path} is corrupt or incomplete: cannot rebuild the policy: "
                                     f"{err}") from err
    return policy.to(device).eval()


def _cpu(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached CPU copies, so checkpoints load on machines without the training device."""
    return {key: value.detach().to("cpu", copy=True) for key, value in state.items()}
