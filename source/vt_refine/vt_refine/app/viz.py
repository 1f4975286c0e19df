"""Plots shared by the scripts and reports (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

from ..utils.point_layout import FLAG_CHANNEL

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


def save_tactile_sequence(tactile, frames, path: str | Path) -> Path:
    """Rows of the four pads' heatmaps at the given steps of an episode.

    Args:
        tactile: Array of shape (T, 4, 12, 32).
        frames: Step indices to draw (one row each).
    """
    import numpy as np

    plt = _pyplot()
    tactile = np.asarray(tactile, dtype=float)
    frames = [int(f) for f in frames]
    vmax = max(float(tactile[frames].max()), 1e-9)
    fig, axes = plt.subplots(len(frames), 4, figsize=(10, 1.3 * len(frames) + 0.6), constrained_layout=True,
                             squeeze=False)
    for r, step in enumerate(frames):
        for pad in range(4):
            ax = axes[r][pad]
            ax.imshow(tactile[step, pad], cmap="inferno", vmin=0, vmax=vmax, aspect="auto")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(PAD_TITLES[pad], fontsize=8)
            if pad == 0:
                ax.set_ylabel(f"step {step}", fontsize=8)
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def save_point_cloud(points, path: str | Path, title: str = "merged visuo-tactile cloud (camera frame)") -> Path:
    """3D scatter of a (N, 5) cloud: visual points grey, tactile points coloured by their reading."""
    import numpy as np

    plt = _pyplot()
    points = np.asarray(points, dtype=float)
    tactile = points[:, FLAG_CHANNEL] > 0.5
    fig = plt.figure(figsize=(5.5, 4.5), constrained_layout=True)
    ax = fig.add_subplot(projection="3d")
    vis = points[~tactile]
    ax.scatter(vis[:, 0], vis[:, 1], vis[:, 2], s=2, c="0.6", label="visual")
    if tactile.any():
        tac = points[tactile]
        sc = ax.scatter(tac[:, 0], tac[:, 1], tac[:, 2], s=3, c=tac[:, 3], cmap="inferno", vmin=0, vmax=1,
                        label="tactile")
        fig.colorbar(sc, ax=ax, shrink=0.6, label="reading")
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    ax.set_zlabel("z [m]")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def save_tactile_gif(tactile, path: str | Path, every: int = 3, fps: int = 8) -> Path:
    """Animated GIF of the four pads over an episode (imageio), one frame every ``every`` steps."""
    import imageio.v2 as imageio
    import numpy as np

    tactile = np.asarray(tactile, dtype=float)
    vmax = max(float(tactile.max()), 1e-9)
    frames = []
    for step in range(0, len(tactile), every):
        row = np.concatenate([np.pad(tactile[step, p] / vmax, 1, constant_values=1.0) for p in range(4)], axis=1)
        rgb = (np.stack([row, row ** 2, row ** 4], axis=-1) * 255).astype(np.uint8)  # a black-red-yellow ramp
        frames.append(np.kron(rgb, np.ones((8, 8, 1), dtype=np.uint8)))
    path = Path(path)
    imageio.mimsave(path, frames, duration=1.0 / fps, loop=0)
    return path
