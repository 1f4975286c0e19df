"""Taxel grid on the contact face of a tactile pad.

Symbols: R rows, C cols, N = R * C taxels of one pad.

A FlexiTac pad is a box; one of its two large faces touches the object. The taxels are the centres of an
R x C grid of squares of side ``pitch`` laid out on that face, centred on it. Positions are in the pad
body frame (the box is centred at the body origin unless an offset is applied by the caller).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["TaxelLayoutError", "make_taxel_grid"]


class TaxelLayoutError(ValueError):
    """The taxel grid cannot be laid out as configured (the message names the offending field)."""


def make_taxel_grid(
    pad_size: Sequence[float],
    rows: int,
    cols: int,
    pitch: float,
    face_sign: int = +1,
    normal_axis: int | None = None,
    row_axis: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Lay out a ``rows x cols`` taxel grid on one large face of a pad box.

    Axes: the normal axis is the pad's thin axis (auto-detected as the smallest entry of ``pad_size``
    when ``normal_axis`` is None). Of the two remaining (in-plane) axes, the *row axis* is the one along
    which the row index advances; by default it is chosen so that the larger of ``rows``/``cols`` runs
    along the longer in-plane side (ties: the lower-index axis is the row axis). The *col axis* is the
    other in-plane axis. Taxel ``(r, c)`` sits at
    ``(r - (rows - 1) / 2) * pitch`` along the row axis, ``(c - (cols - 1) / 2) * pitch`` along the col
    axis and ``face_sign * pad_size[normal_axis] / 2`` along the normal axis.

    Args:
        pad_size: Pad box edge lengths along the pad body's x, y, z [m].
        rows: Number of taxel rows (> 0).
        cols: Number of taxel columns (> 0).
        pitch: Centre-to-centre taxel spacing [m] (> 0).
        face_sign: +1 for the face on the positive side of the normal axis, -1 for the negative side.
        normal_axis: Index (0, 1, 2) of the pad normal axis; None picks the thinnest axis.
        row_axis: Index of the in-plane axis the row index advances along; None picks it as described.

    Returns:
        ``positions``: array of shape (rows * cols, 3), float64, taxel centres in the pad body frame,
        row-major (index ``r * cols + c``), so ``positions.reshape(rows, cols, 3)`` is the grid.
        ``normal``: array of shape (3,), the unit outward normal of the chosen face in the pad body frame.

    Raises:
        TaxelLayoutError: if a field is invalid or the grid does not fit on the face.
    """
    size = np.asarray(pad_size, dtype=np.float64)
    if size.shape != (3,) or not np.all(np.isfinite(size)) or np.any(size <= 0.0):
        raise TaxelLayoutError(f"pad_size must be three positive edge lengths [m] (x, y, z); got {pad_size!r}.")
    if int(rows) != rows or rows <= 0:
        raise TaxelLayoutError(f"rows must be a positive integer; got {rows!r}.")
    if int(cols) != cols or cols <= 0:
        raise TaxelLayoutError(f"cols must be a positive integer; got {cols!r}.")
    rows, cols = int(rows), int(cols)
    if not np.isfinite(pitch) or pitch <= 0.0:
        raise TaxelLayoutError(f"pitch must be a positive spacing [m]; got {pitch!r}.")
    if face_sign not in (-1, 1):
        raise TaxelLayoutError(f"face_sign must be +1 or -1; got {face_sign!r}.")
    if normal_axis is None:
        normal_axis = int(np.argmin(size))
    if normal_axis not in (0, 1, 2):
        raise TaxelLayoutError(f"normal_axis must be 0, 1, 2 or None; got {normal_axis!r}.")
    in_plane = [axis for axis in (0, 1, 2) if axis != normal_axis]
    if row_axis is None:
        long_axis, short_axis = sorted(in_plane, key=lambda axis: (-size[axis], axis))
        if rows == cols or size[in_plane[0]] == size[in_plane[1]]:
            row_axis = in_plane[0]
        else:
            row_axis = long_axis if rows > cols else short_axis
    if row_axis not in in_plane:
        raise TaxelLayoutError(
            f"row_axis must be one of the in-plane axes {in_plane} (normal_axis={normal_axis}); got {row_axis!r}."
        )
    col_axis = in_plane[1] if row_axis == in_plane[0] else in_plane[0]

    # the grid's outer taxels must sit at least half a pitch inside the face edge
    tolerance = 1e-9
    if rows * pitch > size[row_axis] + tolerance:
        raise TaxelLayoutError(
            f"rows * pitch = {rows} * {pitch} m = {rows * pitch:.6g} m does not fit on the pad face side of "
            f"{size[row_axis]:.6g} m (pad_size axis {row_axis}); reduce rows or pitch, or enlarge pad_size."
        )
    if cols * pitch > size[col_axis] + tolerance:
        raise TaxelLayoutError(
            f"cols * pitch = {cols} * {pitch} m = {cols * pitch:.6g} m does not fit on the pad face side of "
            f"{size[col_axis]:.6g} m (pad_size axis {col_axis}); reduce cols or pitch, or enlarge pad_size."
        )

    row_offsets = (np.arange(rows, dtype=np.float64) - 0.5 * (rows - 1)) * pitch
    col_offsets = (np.arange(cols, dtype=np.float64) - 0.5 * (cols - 1)) * pitch
    row_grid, col_grid = np.meshgrid(row_offsets, col_offsets, indexing="ij")
    positions = np.zeros((rows * cols, 3), dtype=np.float64)
    positions[:, row_axis] = row_grid.reshape(-1)
    positions[:, col_axis] = col_grid.reshape(-1)
    positions[:, normal_axis] = face_sign * 0.5 * size[normal_axis]
    normal = np.zeros(3, dtype=np.float64)
    normal[normal_axis] = float(face_sign)
    return positions, normal
