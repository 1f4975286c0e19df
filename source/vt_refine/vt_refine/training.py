"""The two training stages of VT-Refine as package functions (the CLI and the pipeline call these).

* :func:`run_pretrain`: behaviour cloning of the diffusion policy on demo files (visuo-tactile or visual).
* :func:`run_finetune`: DPPO in the twin through rsl-rl's stock OnPolicyRunner -- the same runner and agent cfg
  ``isaaclab train --agent rsl_rl_dppo_cfg_entry_point`` uses; both resume from their last checkpoint.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .utils.errors import UserError
from .utils.paths import check_dataset_files

MODALITIES = ("vt", "visual")


def task_for_modality(task: str, modality: str) -> str:
    """``VTRefine-X-Aloha`` (visuo-tactile) or ``VTRefine-X-Aloha-Visual``."""
    if modality not in MODALITIES:
        raise UserError(f"unknown modality {modality!r}; use one of {MODALITIES}")
    base = task[: -len("-Visual")] if task.endswith("-Visual") else task
    return base if modality == "vt" else f"{base}-Visual"


PROFILE_SECTIONS = ("policy", "pretrain", "collect", "evaluate", "finetune")
"""Top-level sections of a profile YAML (config/quick.yaml, config/paper.yaml)."""


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
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise UserError(f"profile {path} is not valid YAML{where}: {problem}; fix the file") from None
    if not isinstance(raw, dict):
        raise UserError(f"profile {path} must hold a mapping of sections (policy:, pretrain:, collect:, ...), "
                        f"not a {type(raw).__name__}")
    # an empty or misspelt profile would silently train with the built-in (paper-size) defaults
    unknown = sorted(str(key) for key in raw if key not in PROFILE_SECTIONS)
    if unknown:
        raise UserError(f"profile {path} has unknown section(s) {', '.join(unknown)}; the sections are "
                        f"{', '.join(PROFILE_SECTIONS)} (copy config/quick.yaml to start from)")
    if not raw:
        raise UserError(f"profile {path} is empty; give at least one of the sections {', '.join(PROFILE_SECTIONS)} "
                        f"(copy config/quick.yaml to start from)")
    from .policies.diffusion.config import ConfigError, load_profile

    try:  # the policy: and pretrain: sections, checked now rather than when a later stage reads them
        load_profile(path)
    except ConfigError as error:
        raise UserError(f"profile {path}: {error}; fix the value") from None
    return path, raw


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
    num_demos: int | None = None,
    skip_bad_demos: bool = False,
):
    """Pre-train a diffusion policy on demo files for ``task`` (``modality`` "visual" keeps only the visual points);
    ``num_demos`` trains on the first that many demos only.

    The policy's point count comes from the data (the env's cloud size), so a checkpoint fits its env.
    Returns the trainer's result (``final.pt`` under ``out_dir/checkpoints``).
    """
    from .envs import check_task
    from .policies.diffusion import load_profile, pretrain
    from .utils.device import resolve_device

    eval_task = task_for_modality(task, modality)
    check_task(eval_task)
    device = resolve_device(device)
    check_dataset_files(datasets)
    _check_dataset_tasks(datasets, task)
    path, _ = load_profile_file(profile)  # clear error for an unknown profile
    cfg = load_profile(path)
    if total_steps is not None:
        cfg = dataclasses.replace(cfg, pretrain=dataclasses.replace(cfg.pretrain, total_steps=int(total_steps)))
    if seed is not None:
        cfg = dataclasses.replace(cfg, pretrain=dataclasses.replace(cfg.pretrain, seed=int(seed)))
    dataset = _dataset(datasets, cfg.policy, modality, num_demos, skip_bad_demos)
    for skipped in getattr(getattr(dataset, "base", dataset), "skipped", []):
        print(f"[vt-refine pretrain] skipped demo {skipped}", flush=True)
    num_points = dataset.sample_shapes["point_cloud"][1]
    cfg = dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, num_points=int(num_points)))
    if cfg.policy.relative_actions:
        from .assets.aloha import joint_to_action_map

        cfg = dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, joint_to_action=joint_to_action_map()))
    dataset.check_shapes({**cfg.policy.obs_shapes, "actions": cfg.policy.action_shape})
    _make_output_dir(out_dir)
    from .policies.diffusion import CheckpointError

    try:
        return pretrain(cfg, dataset, out_dir, device=device, resume=True, task_id=eval_task, progress=progress)
    except CheckpointError as error:  # resuming a run folder of another task/profile, or a damaged checkpoint
        raise UserError(f"{error}; pass another --output (or delete the folder to start over)") from None


def _check_dataset_tasks(datasets, task: str) -> None:
    """Refuse demo files recorded in another registered task (same shapes, so nothing else would notice)."""
    from .data.hdf5_dataset import DemoReader
    from .envs import known_tasks

    base = task_for_modality(task, "vt")
    for path in datasets:
        with DemoReader(path) as reader:
            recorded = reader.task
        if recorded in known_tasks() and task_for_modality(recorded, "vt") != base:
            raise UserError(f"dataset {path} holds demonstrations of {recorded}, not {base}; pass demos of this "
                            "task or pick the matching --task")


def _make_output_dir(out_dir) -> Path:
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create the output folder {out_dir} ({error.strerror}); choose a writable --output") \
            from None
    return out_dir


def _dataset(datasets, policy_cfg, modality: str, num_demos: int | None = None, skip_bad: bool = False):
    from .data.demo_dataset import DemoChunkDataset

    dataset = DemoChunkDataset(datasets, ["point_cloud", "joint_pos"], obs_steps=policy_cfg.obs_steps,
                               horizon=policy_cfg.horizon_steps, max_episodes=num_demos, skip_bad=skip_bad)
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
    from isaaclab_rl.rsl_rl import RslRlVecEnvWrapper, create_rsl_rl_runner

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
    agent_cfg = finetune_agent_cfg(task, pretrained_checkpoint, device, seed, agent_overrides)
    _check_pretrained_task(pretrained_checkpoint, agent_cfg.task_id)  # before the env is built
    out_dir = _make_output_dir(out_dir)
    for tmp in out_dir.glob(".model_*.pt.*.tmp"):  # a save cut short by a kill (see _atomic_saves)
        tmp.unlink(missing_ok=True)
    newest, done = _newest_runner_checkpoint(out_dir)
    final = out_dir / f"model_{max_iterations}.pt"
    if done >= max_iterations and final.exists():
        return final
    env = make_env(task, num_envs=num_envs, device=device, seed=seed)
    try:
        vec = RslRlVecEnvWrapper(env, clip_actions=agent_cfg.clip_actions)
        runner = create_rsl_rl_runner(vec, agent_cfg, log_dir=str(out_dir))
        _atomic_saves(runner)
        if newest is not None:
            try:
                runner.load(str(newest), map_location=device)
            except ValueError as error:  # e.g. fine-tuned from another pre-trained policy
                raise UserError(f"cannot resume from {newest}: {error}; pass another --output") from None
            # model_<it>.pt is named after rsl-rl's 0-based iteration index; the updates done are recorded inside
            runner.current_learning_iteration = done
        if done < max_iterations:
            runner.learn(num_learning_iterations=max_iterations - done, init_at_random_ep_len=False)
        runner.save(str(final))
    finally:
        env.close()
    return final


def finetune_agent_cfg(task: str, pretrained_checkpoint: str | Path, device: str, seed: int = 0,
                       agent_overrides: dict | None = None):
    """The DPPO runner cfg of ``task`` for ``pretrained_checkpoint`` with profile overrides applied."""
    from isaaclab_rl.rsl_rl import handle_deprecated_rsl_rl_cfg
    from isaaclab_tasks.utils.parse_cfg import load_cfg_from_registry

    import vt_refine.tasks  # noqa: F401  (registers the tasks with gymnasium)

    agent_cfg = load_cfg_from_registry(task, "rsl_rl_dppo_cfg_entry_point")
    agent_cfg.device = device
    agent_cfg.seed = seed
    agent_cfg.pretrained_checkpoint = str(Path(pretrained_checkpoint).resolve())
    for key, value in (agent_overrides or {}).items():
        _set_path(agent_cfg, key, value)
    import rsl_rl

    return handle_deprecated_rsl_rl_cfg(agent_cfg, getattr(rsl_rl, "__version__", "5.5.1"))


def _check_pretrained_task(path, task_id: str | None) -> None:
    """A pre-trained checkpoint of another task is refused with one line, before an env is built."""
    from .policies.diffusion import CheckpointError, load_checkpoint

    try:
        load_checkpoint(path, expected_task_id=task_id)
    except (CheckpointError, FileNotFoundError) as error:
        raise UserError(str(error)) from None


def _newest_runner_checkpoint(out_dir: Path):
    """(newest loadable model_*.pt, DPPO updates it holds) or (None, 0); unreadable files are skipped."""
    import torch

    candidates = sorted(out_dir.glob("model_*.pt"), key=lambda p: int(p.stem.split("_")[1]), reverse=True)
    for path in candidates:
        try:
            payload = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as error:  # a truncated file from an older, non-atomic save
            print(f"[vt-refine finetune] skipping unreadable {path.name} ({type(error).__name__})")
            continue
        if isinstance(payload, dict) and "dppo_iteration" in payload:
            return path, int(payload["dppo_iteration"])
    return None, 0


def _atomic_saves(runner) -> None:
    """rsl-rl's runner writes checkpoints with a plain torch.save; write them to a temporary file and rename
    instead, so a kill mid-save leaves the previous files intact and never a truncated model_*.pt."""
    import torch

    from .utils.atomic import atomic_path

    def save(path: str, infos: dict | None = None) -> None:
        saved = runner.alg.save()
        saved["iter"] = runner.current_learning_iteration
        saved["infos"] = infos
        with atomic_path(path) as tmp:
            torch.save(saved, tmp)
        runner.logger.save_model(path, runner.current_learning_iteration)

    runner.save = save


def _set_path(cfg, dotted: str, value) -> None:
    obj = cfg
    parts = dotted.split(".")
    for part in parts[:-1]:
        obj = getattr(obj, part)
    if not hasattr(obj, parts[-1]):
        raise UserError(f"agent cfg has no field {dotted!r}")
    setattr(obj, parts[-1], value)
