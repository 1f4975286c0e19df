"""Kit-free logic behind the Omniverse GUI panel (``exts/vt_refine``), tested without Kit.

The panel only draws widgets and forwards clicks; everything it shows or runs comes from here: the task
list, the checkpoints found under an output folder, a policy session stepping an env one control step per
call, and the four pads' readings as an RGBA image for ``omni.ui.ByteImageProvider``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from ..utils.errors import UserError


def list_tasks() -> list[str]:
    from .envs import known_tasks

    return known_tasks()


def find_checkpoints(root: str | Path) -> list[Path]:
    """Pre-trained (``final.pt``) and fine-tuned (``model_*.pt``) checkpoints under ``root``, newest first."""
    root = Path(root).expanduser()
    if not root.is_dir():
        return []
    found = [p for p in root.rglob("*.pt") if p.name == "final.pt" or p.name.startswith("model_")]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def tactile_rgba(frame, vmax: float | None = None, scale: int = 4) -> tuple[bytes, int, int]:
    """The four pads side by side as an RGBA image (black-red-yellow ramp), upscaled by ``scale``.

    Args:
        frame: Array of shape (4, 12, 32) of readings (normalised or in newtons).

    Returns:
        (RGBA bytes, width, height) ready for ``ByteImageProvider.set_bytes_data``.
    """
    frame = np.asarray(frame, dtype=np.float32)
    if frame.ndim != 3:
        raise ValueError(f"a tactile frame has shape (pads, rows, cols), got {frame.shape}")
    vmax = float(frame.max()) if vmax is None else float(vmax)
    norm = np.clip(frame / max(vmax, 1e-9), 0.0, 1.0)
    gap = np.ones((frame.shape[1], 1), dtype=np.float32)  # a white column between pads
    row = np.concatenate([np.concatenate([norm[p], gap], axis=1) for p in range(frame.shape[0])], axis=1)
    rgba = np.stack([row, row ** 2, row ** 4, np.ones_like(row)], axis=-1)
    rgba = np.kron(rgba, np.ones((scale, scale, 1), dtype=np.float32))
    data = (rgba * 255).astype(np.uint8)
    return data.tobytes(), data.shape[1], data.shape[0]


class PolicySession:
    """An env of ``task`` driven by a checkpoint, one control step per :meth:`step` (for the GUI's update loop)."""

    def __init__(self, task: str, checkpoint: str | Path, num_envs: int = 1, device: str | None = None):
        from isaaclab_rl.rsl_rl import RslRlVecEnvWrapper

        from .checkpoint import Checkpoint
        from .envs import check_task, make_env

        check_task(task)
        checkpoint = Checkpoint.open(checkpoint).check_task(task)
        if "omni.kit.app" in sys.modules and importlib.util.find_spec("omni.usd") is None:
            # inside Kit, Isaac Lab builds its stage through Isaac Sim's omni.usd; refuse before half an env exists
            raise UserError("the policy session needs Isaac Sim (omni.usd is missing: this Kit app is not Isaac "
                            "Sim); open the panel in Isaac Sim, or run `vt-refine play` outside Kit")
        self.env = make_env(task, num_envs=num_envs, device=device)
        self.vec = RslRlVecEnvWrapper(self.env)
        self.kind = checkpoint.kind
        self.actor = checkpoint.eval_actor(self.vec.get_observations(), self.vec.num_actions, str(self.env.device))
        self.actor.reset()
        self.steps = 0
        self.successes = 0

    def step(self) -> dict:
        """One control step of the policy; returns {"step", "done", "success", "tactile" (4, 12, 32) of env 0}."""
        import torch

        with torch.no_grad():
            action = self.actor(self.vec.get_observations())
            _, reward, dones, _ = self.vec.step(action)
            self.actor.reset(dones)
        self.steps += 1
        self.successes += int((reward > 0).sum())
        tactile = self.env.scene.sensors["tactile"].data.normalized[0].detach().cpu().numpy()
        return {"step": self.steps, "done": bool(dones[0]), "success": bool(reward[0] > 0), "tactile": tactile}

    def close(self) -> None:
        self.env.close()
