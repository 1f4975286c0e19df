"""Behaviour-cloning pre-training of the diffusion policy.

Shape symbols: N samples in a dataset; the others (B, To, Np, C, Dq, Ta, Da) as in the legend of :mod:`.model`.

Datasets are any ``torch.utils.data.Dataset`` whose items are
``{"obs": {"point_cloud": (To, Np, C), "joint_pos": (To, Dq)}, "actions": (Ta, Da)}`` in env units and
which have ``stats() -> {"actions": {"min", "max"}, "joint_pos": {"min", "max"}}`` (per-dim arrays).
A list of datasets is concatenated (mixed data) and their statistics merged.

Reproducibility: batch order and diffusion noise of step s are drawn from generators seeded by
(seed, s), so a run resumed from a checkpoint replays the same stream as an uninterrupted one.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Sampler

from ...utils.point_layout import FLAG_CHANNEL, VALUE_CHANNEL
from .checkpoint import CheckpointCorruptError, CheckpointMismatchError, load_checkpoint, save_checkpoint
from .config import DiffusionPolicyCfg, DiffusionProfile, PretrainCfg
from .policy import DiffusionPolicy, _pick

__all__ = ["merge_stats", "combine_datasets", "relative_action_stats", "PretrainResult",
           "pretrain", "cosine_warmup_factor", "drop_tactile_values"]

_STEP_SEED_STRIDE = 1_000_003  # decorrelates the per-step generators of different seeds


# ---------------------------------------------------------------------------------------------- data
def merge_stats(stats_list: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, np.ndarray]]:
    """Element-wise min of mins and max of maxes over several datasets' ``stats()``."""
    if not stats_list:
        raise ValueError("merge_stats needs at least one stats mapping")
    merged: dict[str, dict[str, np.ndarray]] = {}
    for name, keys in (("actions", ("actions", "action")), ("joint_pos", ("joint_pos", "joints", "state"))):
        pairs = [_pick(stats, keys, name) for stats in stats_list]
        lows = [np.asarray(lo, dtype=np.float64).reshape(-1) for lo, _ in pairs]
        highs = [np.asarray(hi, dtype=np.float64).reshape(-1) for _, hi in pairs]
        if len({lo.shape for lo in lows + highs}) != 1:
            raise ValueError(f"datasets disagree on the {name} dimension: {[lo.shape[0] for lo in lows]}")
        merged[name] = {"min": np.minimum.reduce(lows), "max": np.maximum.reduce(highs)}
    return merged


def combine_datasets(datasets: Dataset | Sequence[Dataset]) -> tuple[Dataset, dict[str, dict[str, np.ndarray]]]:
    """One dataset (a list is concatenated) and its merged statistics."""
    items = list(datasets) if isinstance(datasets, (list, tuple)) else [datasets]
    if not items:
        raise ValueError("pretrain needs at least one dataset")
    for i, ds in enumerate(items):
        if not callable(getattr(ds, "stats", None)):
            raise ValueError(f"dataset #{i} ({type(ds).__name__}) has no stats() method returning action and "
                             "joint min/max; add one (min and max per dim)")
        if len(ds) == 0:  # type: ignore[arg-type]
            raise ValueError(f"dataset #{i} ({type(ds).__name__}) is empty")
    stats = merge_stats([ds.stats() for ds in items])  # type: ignore[attr-defined]
    return (items[0] if len(items) == 1 else ConcatDataset(items)), stats


def relative_action_stats(data: Dataset, cfg: DiffusionPolicyCfg) -> dict[str, np.ndarray]:
    """Per-dim min/max over all samples of the chunk minus the action that holds the sample's last observed
    joints (what a ``relative_actions`` policy predicts): {"min": (Da,), "max": (Da,)}."""
    scale, offset = (np.asarray(row, dtype=np.float64) for row in cfg.joint_to_action)
    low, high = np.full(cfg.action_dim, np.inf), np.full(cfg.action_dim, -np.inf)
    for index in range(len(data)):  # type: ignore[arg-type]
        sample = data[index]
        reference = scale * sample["obs"]["joint_pos"][-1].double().numpy() + offset
        relative = sample["actions"].double().numpy() - reference
        low, high = np.minimum(low, relative.min(0)), np.maximum(high, relative.max(0))
    return {"min": low.astype(np.float32), "max": high.astype(np.float32)}


class _StepBatchSampler(Sampler[list[int]]):
    """Batches for steps [start, stop): epoch e is a permutation seeded by (seed, e); no batch spans epochs."""

    def __init__(self, num_samples: int, batch_size: int, seed: int, start_step: int, stop_step: int):
        self.num_samples, self.batch_size, self.seed = num_samples, batch_size, seed
        self.start_step, self.stop_step = start_step, stop_step
        self.batches_per_epoch = max(1, num_samples // batch_size)

    def __len__(self) -> int:
        return self.stop_step - self.start_step

    def __iter__(self) -> Iterator[list[int]]:
        epoch, perm = -1, None
        for step in range(self.start_step, self.stop_step):
            if self.num_samples < self.batch_size:
                # fewer samples than a batch: draw with replacement so every batch has the same size
                gen = torch.Generator().manual_seed(self.seed * _STEP_SEED_STRIDE + step)
                yield torch.randint(0, self.num_samples, (self.batch_size,), generator=gen).tolist()
                continue
            e, b = divmod(step, self.batches_per_epoch)
            if e != epoch:
                epoch = e
                perm = torch.randperm(self.num_samples,
                                      generator=torch.Generator().manual_seed(self.seed * _STEP_SEED_STRIDE - e - 1))
            yield perm[b * self.batch_size:(b + 1) * self.batch_size].tolist()


# ---------------------------------------------------------------------------------------------- training
def cosine_warmup_factor(step: int, cfg: PretrainCfg) -> float:
    """LR multiplier at ``step``: linear warm-up to 1, then cosine decay to min_lr / lr at total_steps."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    span = max(1, cfg.total_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.min_lr / cfg.lr
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


class _EmaDecay:
    """Per-step EMA decay with the optional (1 + n) / (10 + n) warm-up, as a multi_avg_fn for AveragedModel."""

    def __init__(self, cfg: PretrainCfg):
        self.cfg = cfg
        self.num_updates = 0  # host-side count, so choosing the decay never syncs with the device

    def __call__(self, ema_params: list[torch.Tensor], params: list[torch.Tensor], _n: Any) -> None:
        from torch.optim.swa_utils import get_ema_multi_avg_fn

        n = self.num_updates
        decay = min(self.cfg.ema_decay, (1.0 + n) / (10.0 + n)) if self.cfg.ema_warmup else self.cfg.ema_decay
        get_ema_multi_avg_fn(decay)(ema_params, params, _n)


@dataclass
class PretrainResult:
    """What :func:`pretrain` did."""

    final_checkpoint: Path
    """checkpoints/final.pt."""
    step: int
    """Gradient steps done in all (= cfg.pretrain.total_steps)."""
    resumed_from: int | None
    """Step of the checkpoint this call resumed from, None for a fresh run."""
    losses: list[float] = field(default_factory=list)
    """Training loss of every step run by this call."""


def _to_device(tree: Any, device: torch.device) -> Any:
    if isinstance(tree, Mapping):
        return {key: _to_device(value, device) for key, value in tree.items()}
    return tree.to(device, non_blocking=True) if isinstance(tree, torch.Tensor) else tree


def drop_tactile_values(point_cloud: torch.Tensor, prob: float, generator: torch.Generator) -> torch.Tensor:
    """Taxel readings zeroed in a random share ``prob`` of the samples (all frames), positions and flags kept.

    Args:
        point_cloud: Tensor of shape (B, To, Np, C) in the merged layout of :mod:`vt_refine.utils.point_layout`.

    Returns:
        A new Tensor of shape (B, To, Np, C); visual points and the other samples are unchanged.
    """
    dropped = torch.rand(point_cloud.shape[0], generator=generator, device=point_cloud.device) < prob  # (B,)
    taxel = point_cloud[..., FLAG_CHANNEL] >= 0.5  # (B, To, Np)
    out = point_cloud.clone()
    out[..., VALUE_CHANNEL] = torch.where(taxel & dropped[:, None, None], 0.0, point_cloud[..., VALUE_CHANNEL])
    return out


def _check_sample(sample: Mapping[str, Any], cfg: DiffusionPolicyCfg) -> None:
    """Compare the first dataset item with the policy config; raise ValueError naming the field."""
    if not isinstance(sample, Mapping) or "obs" not in sample or "actions" not in sample:
        raise ValueError("dataset items must be dicts {'obs': {...}, 'actions': (Ta, Da)}; got "
                         f"{type(sample).__name__} with keys {sorted(sample) if isinstance(sample, Mapping) else '-'}")
    shapes = dict(cfg.obs_shapes)
    for key, want in shapes.items():
        if key not in sample["obs"]:
            raise ValueError(f"dataset items lack obs['{key}'] (expected shape {want}); got obs keys "
                             f"{sorted(sample['obs'])}. Set policy.use_point_cloud=false for joint-only data")
        got = tuple(sample["obs"][key].shape)
        # Np may differ from cfg.num_points (the PointNet takes any count), the rest must match
        check = (got[0], got[2]) == (want[0], want[2]) and len(got) == 3 if key == "point_cloud" else got == want
        if not check:
            raise ValueError(f"dataset obs['{key}'] has shape {got}, the policy config expects {want}; "
                             "fix policy.obs_steps/num_points/point_channels/joint_dim or the dataset")
    got_a = tuple(sample["actions"].shape)
    if got_a != cfg.action_shape:
        raise ValueError(f"dataset actions have shape {got_a}, the policy config expects (Ta, Da) = "
                         f"{cfg.action_shape}; fix policy.horizon_steps/action_dim or the dataset")


def pretrain(
    cfg: DiffusionProfile,
    dataset: Dataset | Sequence[Dataset],
    out_dir: str | Path,
    device: str | torch.device = "cpu",
    resume: bool = True,
    *,
    task_id: str | None = None,
    progress: bool = True,
    callback: Callable[[int, float], None] | None = None,
) -> PretrainResult:
    """Behaviour-cloning pre-training with AdamW, warm-up + cosine LR, EMA and gradient clipping.

    Writes ``out_dir/checkpoints/last.pt`` every ``checkpoint_every`` steps, ``final.pt`` at the end,
    TensorBoard scalars (loss, lr, grad_norm) to ``out_dir/tb`` and the resolved profile to
    ``out_dir/profile.yaml``; the last.pt it replaces is kept as previous.pt. With ``resume`` the newest readable
    of last.pt/previous.pt/final.pt in ``out_dir`` is continued
    up to ``cfg.pretrain.total_steps``; a Ctrl-C saves last.pt before re-raising.

    Args:
        cfg: ``policy`` and ``pretrain`` sections (see ``config/quick.yaml``).
        dataset: One dataset or a list (concatenated).
        out_dir: Run folder.
        device: Torch device of the training.
        resume: Continue from a checkpoint in ``out_dir`` when there is one.
        task_id: Stored in checkpoints; a resumed checkpoint must have the same.
        progress: Show a tqdm bar.
        callback: Called after every step with (step done, loss).
    """
    import yaml
    from torch.optim.swa_utils import AveragedModel
    from torch.utils.tensorboard import SummaryWriter
    from tqdm.auto import tqdm

    pcfg, tcfg = cfg.policy, cfg.pretrain
    device = torch.device(device)
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    for tmp in ckpt_dir.glob(".*.pt.*.tmp"):  # a save cut short by a kill (save_checkpoint renames when complete)
        tmp.unlink(missing_ok=True)
    data, stats = combine_datasets(dataset)
    _check_sample(data[0], pcfg)
    if pcfg.relative_actions:
        stats["actions"] = relative_action_stats(data, pcfg)

    torch.manual_seed(tcfg.seed)
    policy = DiffusionPolicy.from_stats(pcfg, stats).to(device)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay,
                                  betas=tuple(tcfg.adam_betas))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine_warmup_factor(s, tcfg))
    ema_decay = _EmaDecay(tcfg)
    # buffers (schedules, normaliser stats) are constants: copied, not averaged (some are integer tensors)
    ema = AveragedModel(policy, multi_avg_fn=ema_decay, use_buffers=False)

    start_step, resumed_from, resumed_final = 0, None, False
    names = ("last.pt", "previous.pt", "final.pt")
    candidates = [ckpt_dir / name for name in names if (ckpt_dir / name).is_file()] if resume else []
    loaded = []
    for path in candidates:  # a damaged file (disk fault, copied half) is skipped: the one before it resumes
        try:
            loaded.append((load_checkpoint(path, map_location=device), path))
        except CheckpointCorruptError as error:
            print(f"[pretrain] skipping {error}", flush=True)
    if candidates and not loaded:
        raise CheckpointCorruptError(f"no readable checkpoint in {ckpt_dir} ({', '.join(p.name for p in candidates)} "
                                     "are all damaged); delete them to start over or pass another output folder")
    if loaded:
        payload, source = max(loaded, key=lambda item: (item[0]["step"], item[1].name == "final.pt"))
        resumed_final = source.name == "final.pt"
        if payload["policy_cfg"] != pcfg.to_dict():
            saved, now = payload["policy_cfg"], pcfg.to_dict()
            diffs = _dict_diff(saved, now)
            raise CheckpointMismatchError(f"cannot resume from {ckpt_dir}: policy config differs between "
                                          f"checkpoint and current profile ({diffs}); use another out_dir "
                                          "or resume=False")
        if task_id is not None and payload["task_id"] != task_id:
            raise CheckpointMismatchError(f"cannot resume from {ckpt_dir}: checkpoint task id "
                                          f"'{payload['task_id']}' vs requested '{task_id}'")
        policy.load_state_dict(payload["model"])
        ema.module.load_state_dict(payload["ema_model"])
        ema_decay.num_updates = int(payload["extra"].get("ema_num_updates", payload["step"]))
        ema.n_averaged.fill_(ema_decay.num_updates)
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        start_step = resumed_from = int(payload["step"])
        print(f"[pretrain] resuming from step {start_step} of {tcfg.total_steps} ({source})", flush=True)
        task_id = payload["task_id"] if task_id is None else task_id

    with (out_dir / "profile.yaml").open("w") as f:
        yaml.safe_dump({"policy": pcfg.to_dict(), "pretrain": tcfg.to_dict()}, f, sort_keys=False)

    def save(name: str, step: int) -> Path:
        if name == "last.pt" and (ckpt_dir / name).is_file():  # keep one step back, should the new one be damaged
            _keep_as_previous(ckpt_dir / name)
        return save_checkpoint(ckpt_dir / name, policy, ema_policy=ema.module, optimizer=optimizer,
                               scheduler=scheduler, train_cfg=tcfg, step=step, task_id=task_id,
                               extra={"ema_num_updates": ema_decay.num_updates})

    result = PretrainResult(final_checkpoint=ckpt_dir / "final.pt", step=start_step, resumed_from=resumed_from)
    if start_step >= tcfg.total_steps:
        if not resumed_final:
            save("final.pt", start_step)
        return result

    loader = DataLoader(
        data,
        batch_sampler=_StepBatchSampler(len(data), tcfg.batch_size, tcfg.seed, start_step, tcfg.total_steps),
        num_workers=tcfg.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    writer = SummaryWriter(log_dir=str(out_dir / "tb"), purge_step=start_step)
    bar = tqdm(total=tcfg.total_steps, initial=start_step, disable=not progress, desc="pretrain", unit="step")
    params = [p for p in policy.parameters() if p.requires_grad]
    step = start_step
    policy.train()
    try:
        for batch in loader:
            batch = _to_device(batch, device)
            noise_gen = torch.Generator(device=device).manual_seed(tcfg.seed * _STEP_SEED_STRIDE + step)
            if tcfg.tactile_dropout > 0 and "point_cloud" in batch["obs"]:
                batch["obs"]["point_cloud"] = drop_tactile_values(batch["obs"]["point_cloud"], tcfg.tactile_dropout,
                                                                  noise_gen)
            loss = policy.loss(batch["actions"], batch["obs"], generator=noise_gen)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = (torch.nn.utils.clip_grad_norm_(params, tcfg.grad_clip_norm)
                         if tcfg.grad_clip_norm is not None else None)
            optimizer.step()
            scheduler.step()
            ema.update_parameters(policy)
            ema_decay.num_updates += 1
            step += 1
            loss_value = float(loss.detach())
            result.losses.append(loss_value)
            bar.update(1)
            if step % tcfg.log_every == 0 or step == tcfg.total_steps:
                writer.add_scalar("pretrain/loss", loss_value, step)
                writer.add_scalar("pretrain/lr", scheduler.get_last_lr()[0], step)
                if grad_norm is not None:
                    writer.add_scalar("pretrain/grad_norm", float(grad_norm), step)
                bar.set_postfix(loss=f"{loss_value:.4f}")
            if step % tcfg.checkpoint_every == 0 and step < tcfg.total_steps:
                save("last.pt", step)
            if callback is not None:
                callback(step, loss_value)
    except KeyboardInterrupt:
        save("last.pt", step)
        raise
    finally:
        bar.close()
        writer.close()
    save("final.pt", step)
    result.step = step
    return result


def _keep_as_previous(last: Path) -> None:
    """Make ``previous.pt`` the current ``last.pt`` by a hard link (a copy where links are not supported), so that
    ``last.pt`` never disappears, not even for a moment, before its successor replaces it."""
    tmp = last.with_name(".previous.pt.link.tmp")  # matches the leftover pattern cleaned at start-up
    tmp.unlink(missing_ok=True)
    try:
        os.link(last, tmp)
    except OSError:
        shutil.copy2(last, tmp)
    os.replace(tmp, last.with_name("previous.pt"))


def _dict_diff(a: Any, b: Any, prefix: str = "") -> str:
    """Human-readable list of differing leaves between two nested dicts: 'key: a vs b'."""
    if isinstance(a, dict) and isinstance(b, dict):
        parts = [_dict_diff(a.get(k), b.get(k), f"{prefix}{k}.") for k in sorted(set(a) | set(b))]
        return "; ".join(p for p in parts if p)
    return "" if a == b else f"{prefix.rstrip('.')}: checkpoint {a!r} vs current {b!r}"
