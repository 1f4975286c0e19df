"""The two training stages of VT-Refine as package functions (the CLI and the pipeline call these).

* :func:`run_pretrain`: behaviour cloning of the diffusion policy on demo files (visuo-tactile or visual).
* :func:`run_finetune`: DPPO in the twin through rsl-rl's stock OnPolicyRunner -- the same runner and agent cfg
  ``isaaclab train --agent rsl_rl_dppo_cfg_entry_point`` uses; both resume from their last checkpoint.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .utils.errors import UserError

MODALITIES = ("vt", "visual")


def task_for_modality(task: str, modality: str) -> str:
    """``VTRefine-X-Aloha`` (visuo-tactile) or ``VTRefine-X-Aloha-Visual``."""
    if modality not in MODALITIES:
        raise UserError(f"unknown modality {modality!r}; use one of {MODALITIES}")
    base = task[: -len("-Visual")] if task.endswith("-Visual") else task
    return base if modality == "vt" else f"{base}-Visual"


def load_profile_file(profile: str):
    """A profile name ("quick", "paper") or a YAML path -> the raw dict (all sections)."""
    import yaml

    from .policies.diffusion.config import PROFILE_DIR

    path = Path(profile)
    if not path.suffix:
        path = Path(PROFILE_DIR) / f"{profile}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in Path(PROFILE_DIR).glob("*.yaml"))
        raise UserError(f"unknown profile {profile!r}: no {path}; known profiles: {', '.join(known)} (or a YAML path)")
    try:
        return path, yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise UserError(f"profile {path} is not valid YAML: {error}") from None


def run_pretrain(
    task: str,
    datasets: list[str | Path],
    out_dir: str | Path,
    profile: str = "quick",
    modality: str = "vt",
    device: str | None = None,
    total_steps: int | None = None,
    seed: int | None = None,
    progress: bool = True,
):
    """Pre-train a diffusion policy on demo files for ``task`` (``modality`` "visual" keeps only the visual points).

    The policy's point count comes from the data (the env's cloud size), so a checkpoint fits its env.
    Returns the trainer's result (``final.pt`` under ``out_dir/checkpoints``).
    """
    from .envs import check_task
    from .policies.diffusion import load_profile, pretrain
    from .utils.device import resolve_device

    eval_task = task_for_modality(task, modality)
    check_task(eval_task)
    device = resolve_device(device)
    if not datasets:
        raise UserError("no dataset given: pass one or more demo files (HDF5, written by `vt-refine collect`)")
    for path in datasets:
        if not Path(path).is_file():
            raise UserError(f"dataset {path} does not exist; collect demos first (`vt-refine collect`)")
    path, _ = load_profile_file(profile)  # clear error for an unknown profile
    cfg = load_profile(path)
    if total_steps is not None:
        cfg = dataclasses.replace(cfg, pretrain=dataclasses.replace(cfg.pretrain, total_steps=int(total_steps)))
    if seed is not None:
        cfg = dataclasses.replace(cfg, pretrain=dataclasses.replace(cfg.pretrain, seed=int(seed)))
    dataset = _dataset(datasets, cfg.policy, modality)
    num_points = dataset.sample_shapes["point_cloud"][1]
    cfg = dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, num_points=int(num_points)))
    dataset.check_shapes({**cfg.policy.obs_shapes, "actions": cfg.policy.action_shape})
    return pretrain(cfg, dataset, out_dir, device=device, resume=True, task_id=eval_task, progress=progress)


def _dataset(datasets, policy_cfg, modality: str):
    from .data.demo_dataset import DemoChunkDataset

    dataset = DemoChunkDataset(datasets, ["point_cloud", "joint_pos"], obs_steps=policy_cfg.obs_steps,
                               horizon=policy_cfg.horizon_steps)
    if modality == "visual":
        dataset = VisualOnly(dataset)
    return dataset


class VisualOnly:
    """A demo dataset seen by the visual-only policy: the tactile points (flag channel 1) are dropped, exactly
    what the ``-Visual`` tasks' cloud holds (the visual points come first in the merged cloud)."""

    def __init__(self, base):
        self.base = base
        cloud = base[0]["obs"]["point_cloud"]
        self.num_visual = int((cloud[-1, :, 4] < 0.5).sum())  # tactile points carry flag 1

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


def run_finetune(
    task: str,
    pretrained_checkpoint: str | Path,
    out_dir: str | Path,
    max_iterations: int,
    num_envs: int,
    device: str | None = None,
    seed: int = 0,
    agent_overrides: dict | None = None,
    progress: bool = True,
) -> Path:
    """DPPO fine-tuning of a pre-trained checkpoint on ``task``; resumes from ``out_dir``'s newest model_*.pt.

    Returns the path of the final runner checkpoint.
    """
    from isaaclab_rl.rsl_rl import RslRlVecEnvWrapper, create_rsl_rl_runner, handle_deprecated_rsl_rl_cfg
    from isaaclab_tasks.utils.parse_cfg import load_cfg_from_registry

    from .envs import check_task, make_env
    from .evaluation import checkpoint_kind
    from .utils.device import resolve_device

    check_task(task)
    device = resolve_device(device)
    if checkpoint_kind(pretrained_checkpoint) != "pretrained":
        raise UserError(f"{pretrained_checkpoint} is a DPPO checkpoint; fine-tuning starts from a pre-trained one "
                        "(pretrain's checkpoints/final.pt); to continue a fine-tuning run, rerun with the same output")
    if max_iterations < 1:
        raise UserError(f"--max_iterations must be at least 1, got {max_iterations}")
    agent_cfg = load_cfg_from_registry(task, "rsl_rl_dppo_cfg_entry_point")
    agent_cfg.device = device
    agent_cfg.seed = seed
    agent_cfg.pretrained_checkpoint = str(Path(pretrained_checkpoint).resolve())
    for key, value in (agent_overrides or {}).items():
        _set_path(agent_cfg, key, value)
    import rsl_rl

    agent_cfg = handle_deprecated_rsl_rl_cfg(agent_cfg, getattr(rsl_rl, "__version__", "5.5.1"))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = sorted(out_dir.glob("model_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    done = int(checkpoints[-1].stem.split("_")[1]) if checkpoints else 0
    final = out_dir / f"model_{max_iterations}.pt"
    if done >= max_iterations and final.exists():
        return final
    env = make_env(task, num_envs=num_envs, device=device, seed=seed)
    try:
        vec = RslRlVecEnvWrapper(env, clip_actions=agent_cfg.clip_actions)
        runner = create_rsl_rl_runner(vec, agent_cfg, log_dir=str(out_dir))
        if checkpoints:
            runner.load(str(checkpoints[-1]), map_location=device)
        runner.learn(num_learning_iterations=max_iterations - done, init_at_random_ep_len=False)
        runner.save(str(final))
    finally:
        env.close()
    return final


def _set_path(cfg, dotted: str, value) -> None:
    obj = cfg
    parts = dotted.split(".")
    for part in parts[:-1]:
        obj = getattr(obj, part)
    if not hasattr(obj, parts[-1]):
        raise UserError(f"agent cfg has no field {dotted!r}")
    setattr(obj, parts[-1], value)
