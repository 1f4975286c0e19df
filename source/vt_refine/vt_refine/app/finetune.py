"""Stage ``finetune``: DPPO in the twin through rsl-rl's stock OnPolicyRunner, the same runner and agent cfg
``isaaclab train --agent rsl_rl_dppo_cfg_entry_point`` uses; a run folder resumes from its newest model_*.pt.
"""

from __future__ import annotations

from pathlib import Path

from ..utils.errors import UserError
from ..utils.paths import make_output_dir
from .checkpoint import PRETRAINED, Checkpoint
from .profile import FinetuneSettings


def run_finetune(
    task: str,
    pretrained: Checkpoint,
    out_dir: str | Path,
    settings: FinetuneSettings,
    device: str,
    seed: int = 0,
    max_iterations: int | None = None,
    num_envs: int | None = None,
    progress: bool = True,
) -> Path:
    """DPPO fine-tuning of the pre-trained checkpoint on ``task`` (checked by the caller), with the runner cfg of
    ``settings`` (a profile's ``finetune:``); ``max_iterations``/``num_envs`` override the profile's.
    Resumes from ``out_dir``'s newest model_*.pt; returns the path of the final runner checkpoint.
    """
    from isaaclab_rl.rsl_rl import RslRlVecEnvWrapper, create_rsl_rl_runner

    from .envs import make_env

    if pretrained.kind != PRETRAINED:
        raise UserError(f"{pretrained.path} is a DPPO checkpoint; fine-tuning starts from a pre-trained one "
                        "(pretrain's checkpoints/final.pt); to continue a fine-tuning run, rerun with the same output")
    agent_cfg = finetune_agent_cfg(task, pretrained.path, device, seed, settings)
    if max_iterations is not None:
        agent_cfg.max_iterations = max_iterations
    max_iterations = agent_cfg.max_iterations
    if agent_cfg.task_id is not None:
        pretrained.check_task(agent_cfg.task_id)  # before the env is built
    num_envs = num_envs or settings.num_envs
    out_dir = make_output_dir(out_dir)
    for tmp in out_dir.glob(".model_*.pt.*.tmp"):  # a save cut short by a kill (see _atomic_saves)
        tmp.unlink(missing_ok=True)
    newest, done = _newest_runner_checkpoint(out_dir)
    final = out_dir / f"model_{max_iterations}.pt"
    if done >= max_iterations and final.exists():
        return final
    env = make_env(task, cfg_hook=progress_reward(settings.progress_reward_weight), num_envs=num_envs, device=device,
                   seed=seed)
    try:
        vec = RslRlVecEnvWrapper(env, clip_actions=agent_cfg.clip_actions)
        runner = create_rsl_rl_runner(vec, agent_cfg, log_dir=str(out_dir))
        _atomic_saves(runner)
        if newest is not None:
            try:
                runner.load(str(newest), map_location=device)
            except ValueError as error:  # e.g. fine-tuned from another pre-trained policy
                raise UserError(f"cannot resume from {newest}: {error}; pass another --output") from None
            except RuntimeError as error:  # a network of other sizes, e.g. saved before the critic state changed
                mismatch = [line.strip() for line in str(error).splitlines() if "size mismatch" in line]
                if not mismatch:
                    raise
                raise UserError(f"cannot resume from {newest}: its networks do not fit this task's observations "
                                f"({mismatch[0]}); pass another --output") from None
            # model_<it>.pt is named after rsl-rl's 0-based iteration index; the updates done are recorded inside
            runner.current_learning_iteration = done
        if done < max_iterations:
            runner.learn(num_learning_iterations=max_iterations - done, init_at_random_ep_len=False)
        runner.save(str(final))
    finally:
        env.close()
    return final


def progress_reward(weight: float):
    """Env cfg hook that turns the task's progress term on at ``weight`` (None when 0: the registered reward)."""
    if weight == 0:
        return None

    def hook(cfg) -> None:
        cfg.rewards.progress.weight = float(weight)

    return hook


def finetune_agent_cfg(task: str, pretrained_checkpoint: str | Path, device: str, seed: int = 0,
                       settings: FinetuneSettings | None = None):
    """The DPPO runner cfg registered for ``task``, with a profile's ``finetune:`` fields applied, for
    ``pretrained_checkpoint``."""
    from isaaclab_rl.rsl_rl import handle_deprecated_rsl_rl_cfg
    from isaaclab_tasks.utils.parse_cfg import load_cfg_from_registry

    import vt_refine.tasks  # noqa: F401  (registers the tasks with gymnasium)

    agent_cfg = load_cfg_from_registry(task, "rsl_rl_dppo_cfg_entry_point")
    if settings is not None:
        settings.runner_cfg(agent_cfg)
    agent_cfg.device = device
    agent_cfg.seed = seed
    agent_cfg.pretrained_checkpoint = str(Path(pretrained_checkpoint).resolve())
    import rsl_rl

    return handle_deprecated_rsl_rl_cfg(agent_cfg, getattr(rsl_rl, "__version__", "5.5.1"))


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

    from ..utils.atomic import atomic_path

    def save(path: str, infos: dict | None = None) -> None:
        saved = runner.alg.save()
        saved["iter"] = runner.current_learning_iteration
        saved["infos"] = infos
        with atomic_path(path) as tmp:
            torch.save(saved, tmp)
        runner.logger.save_model(path, runner.current_learning_iteration)

    runner.save = save
