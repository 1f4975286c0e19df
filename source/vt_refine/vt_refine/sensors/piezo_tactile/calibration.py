"""Fit the Kelvin-Voigt taxel model to measured force curves.

Legend: S samples.

The paper presses the real pad with a dynamic mechanical analyser (DMA) and fits k_n, k_d so that the
simulated force ``k_n * d + k_d * ddot`` matches the measured one in the least-squares sense. Both
coefficients are physical (non-negative), so the fit is a non-negative least squares (scipy's NNLS).

CSV formats (header row, comma separated, SI units, extra columns ignored):
    depth, depth_rate, force        [m], [m/s], [N]
    indentation, reading[, time]    [m], [N], [s]  (with time, the rate is the gradient of indentation)
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

__all__ = [
    "CalibrationData",
    "CalibrationFileNotFoundError",
    "CalibrationFormatError",
    "fit_calibration",
    "fit_from_indentation",
    "fit_kelvin_voigt",
    "load_calibration_csv",
]

KELVIN_VOIGT_COLUMNS = ("depth", "depth_rate", "force")
INDENTATION_COLUMNS = ("indentation", "reading")


class CalibrationFileNotFoundError(FileNotFoundError):
    """The calibration CSV does not exist."""


class CalibrationFormatError(ValueError):
    """The calibration data cannot be used (the message says which column/row and what to do)."""


def _as_samples(name: str, values, count: int | None = None) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if count is not None and array.shape[0] != count:
        raise CalibrationFormatError(f"{name} has {array.shape[0]} samples but the other inputs have {count}.")
    if not np.all(np.isfinite(array)):
        raise CalibrationFormatError(f"{name} contains NaN or inf; drop those samples first.")
    return array


def fit_kelvin_voigt(depth, depth_rate, force) -> tuple[float, float, float]:
    """Least-squares k_n, k_d >= 0 of ``force = k_n * depth + k_d * depth_rate``.

    Only samples in contact with a positive force are used (depth > 0 and force > 0): out of contact the
    model is 0 whatever the coefficients, and a zero force in contact is the clamp, not the linear law.

    Args:
        depth: Array of shape (S,), penetration [m].
        depth_rate: Array of shape (S,), penetration rate [m/s].
        force: Array of shape (S,), measured force [N].

    Returns:
        (k_n [N/m], k_d [N s/m], rmse [N] of the fit over the used samples).
    """
    depth = _as_samples("depth", depth)
    depth_rate = _as_samples("depth_rate", depth_rate, depth.shape[0])
    force = _as_samples("force", force, depth.shape[0])
    used = (depth > 0.0) & (force > 0.0)
    if used.sum() < 2:
        raise CalibrationFormatError(
            f"only {int(used.sum())} samples have depth > 0 and force > 0; at least 2 are needed to fit k_n and k_d."
        )
    design = np.stack([depth[used], depth_rate[used]], axis=1)
    # columns differ by orders of magnitude (m vs m/s); scale them to unit norm for a well-posed solve
    column_norm = np.linalg.norm(design, axis=0)
    column_norm[column_norm == 0.0] = 1.0
    scaled, _ = nnls(design / column_norm, force[used])
    k_n, k_d = scaled / column_norm
    rmse = float(np.sqrt(np.mean((design @ np.array([k_n, k_d]) - force[used]) ** 2)))
    return float(k_n), float(k_d), rmse


def fit_from_indentation(indentation, reading, time=None) -> tuple[float, float, float]:
    """Fit an indentation test (DMA sweep).

    Without ``time`` only the stiffness is identifiable: ``reading = k_n * indentation`` (k_d returned as 0).
    With ``time`` the rate is ``d indentation / d t`` (central differences) and both are fitted.

    Args:
        indentation: Array of shape (S,), indentation [m].
        reading: Array of shape (S,), measured force [N].
        time: Optional array of shape (S,), strictly increasing sample times [s].

    Returns:
        (k_n [N/m], k_d [N s/m], rmse [N]).
    """
    indentation = _as_samples("indentation", indentation)
    reading = _as_samples("reading", reading, indentation.shape[0])
    if time is None:
        # a zero rate column leaves k_d unconstrained; NNLS then returns k_d = 0
        k_n, _, rmse = fit_kelvin_voigt(indentation, np.zeros_like(indentation), reading)
        return k_n, 0.0, rmse
    time = _as_samples("time", time, indentation.shape[0])
    if np.any(np.diff(time) <= 0.0):
        raise CalibrationFormatError("time must be strictly increasing; sort the samples or drop duplicates.")
    return fit_kelvin_voigt(indentation, np.gradient(indentation, time), reading)


@dataclass
class CalibrationData:
    """Columns of a calibration CSV."""

    kind: str
    """'kelvin_voigt' (depth, depth_rate, force) or 'indentation' (indentation, reading[, time])."""
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    """Column name -> array of shape (S,)."""
    path: str = ""


def load_calibration_csv(path: str | Path) -> CalibrationData:
    """Read a calibration CSV (see the module docstring for the accepted columns).

    Raises:
        CalibrationFileNotFoundError: the file does not exist.
        CalibrationFormatError: missing columns, non-numeric values or too few rows.
    """
    path = Path(path)
    if not path.is_file():
        raise CalibrationFileNotFoundError(f"calibration CSV not found: '{path}'; pass the path of an existing file.")
    try:
        with path.open(newline="") as stream:
            reader = csv.reader(stream)
            header = next(reader, None)
            rows = [row for row in reader if any(cell.strip() for cell in row)]
    except UnicodeDecodeError as error:
        raise CalibrationFormatError(f"'{path}' is not a text CSV file ({error}).") from None
    if not header:
        raise CalibrationFormatError(
            f"'{path}' is empty; expected a header with columns {KELVIN_VOIGT_COLUMNS} or {INDENTATION_COLUMNS}."
        )
    names = [name.strip().lower() for name in header]
    if all(column in names for column in KELVIN_VOIGT_COLUMNS):
        kind, wanted = "kelvin_voigt", list(KELVIN_VOIGT_COLUMNS)
    elif all(column in names for column in INDENTATION_COLUMNS):
        kind, wanted = "indentation", list(INDENTATION_COLUMNS) + (["time"] if "time" in names else [])
    else:
        raise CalibrationFormatError(
            f"'{path}' has columns {names}; expected {', '.join(KELVIN_VOIGT_COLUMNS)} "
            f"or {', '.join(INDENTATION_COLUMNS)} (optionally time)."
        )
    if len(rows) < 2:
        raise CalibrationFormatError(f"'{path}' has {len(rows)} data rows; at least 2 are needed for a fit.")
    columns: dict[str, np.ndarray] = {}
    for column in wanted:
        index = names.index(column)
        values = np.empty(len(rows))
        for row_number, row in enumerate(rows, start=2):
            try:
                values[row_number - 2] = float(row[index])
            except (IndexError, ValueError):
                cell = row[index] if index < len(row) else "<missing>"
                raise CalibrationFormatError(
                    f"'{path}' line {row_number}, column '{column}': {cell!r} is not a number."
                ) from None
            if not math.isfinite(values[row_number - 2]):
                raise CalibrationFormatError(f"'{path}' line {row_number}, column '{column}': value is not finite.")
        columns[column] = values
    return CalibrationData(kind=kind, columns=columns, path=str(path))


def fit_calibration(data: CalibrationData) -> tuple[float, float, float]:
    """Fit (k_n, k_d, rmse) to loaded calibration data of either kind."""
    if data.kind == "kelvin_voigt":
        return fit_kelvin_voigt(data.columns["depth"], data.columns["depth_rate"], data.columns["force"])
    return fit_from_indentation(data.columns["indentation"], data.columns["reading"], data.columns.get("time"))
