"""Stage ``pretrain``: behaviour cloning of the diffusion policy on demo files (visuo-tactile or visual-only).

The policy's point count comes from the data (the env's cloud size), so a checkpoint fits its env. The run folder
is resumed from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..task_ids import Modality, task_for_modality
from ..utils.errors import UserError
from ..utils.paths import make_output_dir
from ..utils.point_layout import FLAG_CHANNEL
from .profile import Profile


def run_pretrain(
    task: str,
    datasets: list[Path],
    out_dir: str | Path,
    profile: Profile,
    modality: Modality = Modality.VT,
    device: str = "cpu",
    progress: bool = True,
    num_demos: int | None = None,
    skip_bad_demos: bool = False,
):
    """Pre-train a diffusion policy for ``task`` on checked demo files (``modality`` visual keeps only the visual
    points); ``num_demos`` trains on the first that many demos only. The caller has checked the task, the device
    and the files (the command line's edge); the demos' task is checked here (it needs the files opened).

    Returns the trainer's result (``final.pt`` under ``out_dir/checkpoints``).
    """
    from ..policies.diffusion import CheckpointError, pretrain

    eval_task = task_for_modality(task, modality)
    missing = [name for name in ("policy", "pretrain") if name not in profile.sections]
    if missing:  # the built-in defaults are the paper's networks: hours per step on a CPU
        raise UserError(f"profile {profile.path} has no {' or '.join(missing)} section; pre-training needs both "
                        "(copy the quick profile's)")
    _check_dataset_tasks(datasets, task)
    cfg = profile.diffusion
    dataset = _dataset(datasets, cfg.policy, Modality(modality), num_demos, skip_bad_demos)
    for skipped in getattr(getattr(dataset, "base", dataset), "skipped", []):
        print(f"[vt-refine pretrain] skipped demo {skipped}", flush=True)
    num_points = dataset.sample_shapes["point_cloud"][1]
    cfg = dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, num_points=int(num_points)))
    if modality is Modality.VISUAL:  # a visual cloud has no taxels to encode apart
        point_encoder = dataclasses.replace(cfg.policy.point_encoder, tactile_encoder="merged")
        cfg = dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, point_encoder=point_encoder))
    if cfg.policy.relative_actions:
        from ..assets.aloha import joint_to_action_map

        cfg = dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, joint_to_action=joint_to_action_map()))
    dataset.check_shapes({**cfg.policy.obs_shapes, "actions": cfg.policy.action_shape})
    make_output_dir(out_dir)
    try:
        return pretrain(cfg, dataset, out_dir, device=device, resume=True, task_id=eval_task, progress=progress)
    except CheckpointError as error:  # resuming a run folder of another task/profile, or a damaged checkpoint
        raise UserError(f"{error}; pass another --output (or delete the folder to start over)") from None


def _check_dataset_tasks(datasets, task: str) -> None:
    """Refuse demo files recorded in another registered task (same shapes, so nothing else would notice)."""
    from ..data.hdf5_dataset import DemoReader
    from .envs import known_tasks

    base = task_for_modality(task, Modality.VT)
    for path in datasets:
        with DemoReader(path) as reader:
            recorded = reader.task
        if recorded in known_tasks() and task_for_modality(recorded, Modality.VT) != base:
            raise UserError(f"dataset {path} holds demonstrations of {recorded}, not {base}; pass demos of this "
                            "task or pick the matching --task")


def _dataset(datasets, policy_cfg, modality: Modality, num_demos: int | None = None, skip_bad: bool = False):
    from ..data.demo_dataset import DemoChunkDataset

    dataset = DemoChunkDataset(datasets, ["point_cloud", "joint_pos"], obs_steps=policy_cfg.obs_steps,
                               horizon=policy_cfg.horizon_steps, max_episodes=num_demos, skip_bad=skip_bad)
    if modality is Modality.VISUAL:
        dataset = VisualOnly(dataset)
    return dataset


class VisualOnly:
    """A demo dataset seen by the visual-only policy: the tactile points (flag channel 1) are dropped, exactly
    what the ``-Visual`` tasks' cloud holds (the visual points come first in the merged cloud)."""

    def __init__(self, base):
        self.base = base
        cloud = base[0]["obs"]["point_cloud"]
        self.num_visual = int((cloud[-1, :, FLAG_CHANNEL] < 0.5).sum())

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        item = self.base[i]
        obs = dict(item["obs"])
        obs["point_cloud"] = obs["point_cloud"][:, : self.num_visual]
        return {**item, "obs": obs}

    def stats(self):
        return self.base.stats()

    @property
    def sample_shapes(self):
        shapes = dict(self.base.sample_shapes)
        to, _, c = shapes["point_cloud"]
        shapes["point_cloud"] = (to, self.num_visual, c)
        return shapes

    def check_shapes(self, expected):
        for key, shape in expected.items():
            have = self.sample_shapes.get(key) if key != "actions" else self.base.sample_shapes.get("actions")
            if have is not None and tuple(have) != tuple(shape):
                raise UserError(f"dataset sample {key} has shape {tuple(have)} but the policy expects {tuple(shape)}")
