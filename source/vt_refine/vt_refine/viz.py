"""Plots shared by the scripts and reports (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

PAD_TITLES = ("left arm / left finger", "left arm / right finger", "right arm / left finger", "right arm / right finger")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_tactile_heatmaps(frame, path: str | Path, title: str = "", vmax: float | None = None) -> Path:
    """Save the four pads' readings as heatmaps.

    Args:
        frame: Array-like of shape (4, 12, 32): one reading per taxel.
    """
    import numpy as np

    plt = _pyplot()
    frame = np.asarray(frame, dtype=float)
    vmax = vmax if vmax is not None else max(float(frame.max()), 1e-9)
    fig, axes = plt.subplots(1, frame.shape[0], figsize=(3.2 * frame.shape[0], 2.4), constrained_layout=True)
    for pad, ax in enumerate(np.atleast_1d(axes)):
        im = ax.imshow(frame[pad], cmap="inferno", vmin=0.0, vmax=vmax, aspect="auto")
        ax.set_title(PAD_TITLES[pad] if pad < len(PAD_TITLES) else f"pad {pad}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes, shrink=0.8)
    if title:
        fig.suptitle(title, fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
