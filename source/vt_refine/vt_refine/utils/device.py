"""Device selection: CPU unless a GPU is present, and a clear error when a missing GPU is asked for."""

from __future__ import annotations

from .errors import UserError


def default_device() -> str:
    """``cuda:0`` when a CUDA device is usable, else ``cpu``."""
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


def resolve_device(requested: str | None) -> str:
    """Validate a ``--device`` value; ``None`` or ``"auto"`` picks :func:`default_device`.

    Raises:
        UserError: for a CUDA device on a machine without one, or a malformed name.
    """
    if requested in (None, "", "auto"):
        return default_device()
    requested = requested.strip()
    if requested == "cuda":
        requested = "cuda:0"
    if requested == "cpu":
        return "cpu"  # no torch import: a refusal of other bad input stays fast
    import torch

    if requested.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UserError(
                f"--device {requested} was requested but this machine has no usable CUDA GPU "
                "(torch.cuda.is_available() is False); rerun with --device cpu"
            )
        index = requested.split(":", 1)[1]
        if not index.isdigit() or int(index) >= torch.cuda.device_count():
            raise UserError(
                f"--device {requested}: there are {torch.cuda.device_count()} CUDA device(s); use cuda:0..."
                f"cuda:{torch.cuda.device_count() - 1} or cpu"
            )
        return requested
    raise UserError(f"--device {requested!r} is not a device name; use cpu, cuda or cuda:N")
