"""One checkpoint type for the stages: a file opened once into what they ask of it.

Two kinds of file reach the commands: ``pretrain``'s ``checkpoints/final.pt`` (a diffusion policy) and DPPO's
``model_<it>.pt`` (the fine-tuned denoiser, with the path of the pre-trained policy it started from). Both are
read here, once each, and passed down as a :class:`Checkpoint`; errors are one line (:class:`UserError`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..task_ids import Modality, modality_of
from ..utils.errors import UserError
from ..utils.paths import check_checkpoint_file

PRETRAINED, FINETUNED = "pretrained", "finetuned"


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    kind: str
    """``pretrained`` (a diffusion policy) or ``finetuned`` (a DPPO runner checkpoint)."""
    task: str | None
    """The task id it was trained (or fine-tuned) on; None for files that do not record it."""
    payload: dict
    """The file's contents."""
    pretrained_path: Path
    """The pre-trained policy's file: this one, or the one a fine-tuning run started from."""
    pretrained: dict
    """That file's contents (read once too)."""

    @classmethod
    def open(cls, path: str | Path) -> Checkpoint:
        from ..policies.diffusion import CheckpointError, load_checkpoint, read_checkpoint_file

        path = check_checkpoint_file(path)
        try:
            payload = read_checkpoint_file(path)
        except CheckpointError as error:
            raise UserError(f"{error}") from None
        if not isinstance(payload, dict):
            raise UserError(f"checkpoint {path} is not a vt_refine checkpoint (a {type(payload).__name__}); pick "
                            "pretrain's checkpoints/final.pt or a fine-tuning run's model_<it>.pt")
        if "actor_optimizer_state_dict" not in payload:
            try:
                load_checkpoint(path, payload=payload)
            except CheckpointError as error:
                raise UserError(str(error)) from None
            return cls(path, PRETRAINED, payload.get("task_id"), payload, path, payload)
        meta = payload.get("vt_refine_dppo") or {}
        source = meta.get("pretrained_checkpoint")
        if not source:
            raise UserError(f"{path} is a DPPO checkpoint without the record of its pre-trained policy; it was "
                            "written by an older vt_refine: evaluate it with the runner that wrote it")
        source = Path(source)
        try:
            pretrained = load_checkpoint(source)
        except (CheckpointError, FileNotFoundError) as error:
            raise UserError(f"{path} was fine-tuned from {source}, which cannot be read ({error})") from None
        return cls(path, FINETUNED, meta.get("task_id") or pretrained.get("task_id"), payload, source, pretrained)

    @property
    def meta(self) -> dict[str, Any]:
        """A fine-tuned checkpoint's record of its run (pre-trained source, actor cfg, obs group); {} otherwise."""
        if self.kind != FINETUNED:
            return {}
        return self.payload.get("vt_refine_dppo") or {}

    @property
    def modality(self) -> Modality | None:
        return None if self.task is None else modality_of(self.task)

    def check_task(self, task: str) -> Checkpoint:
        """This checkpoint, after checking it belongs to ``task`` (e.g. not the visual policy on the VT task)."""
        if self.task is not None and self.task != task:
            verb = "fine-tuned" if self.kind == FINETUNED else "trained"
            raise UserError(f"checkpoint {self.path} was {verb} on {self.task} but the task is {task}; pass "
                            f"--task {self.task} or a checkpoint of {task}")
        return self

    def eval_actor(self, obs, num_actions: int, device: str, sampler: str | None = None,
                   ft_denoising_steps: int | None = None, act_steps: int | None = None):
        """The actor that judges this checkpoint: the pre-trained policy's deterministic chain, with the fine-tuned
        denoising steps when there are any (one sampling rule for both kinds).

        Args:
            obs: The env's observations (rsl-rl TensorDict), to check the policy fits the env.
            sampler: Pre-trained only: the chain (default: the policy's own: quick DDIM-5, paper DDPM-100).
            ft_denoising_steps: Pre-trained only: the last steps held by the trainable copy (same weights here;
                default: the DPPO actor cfg's).
            act_steps: Te executed per decision (default: the checkpoint's own).
        """
        import torch

        from ..policies.diffusion import CheckpointError
        from ..rl.dppo.actor import DiffusionActor
        from ..rl.dppo.pretrained import load_pretrained_policy

        meta = self.meta
        group = meta.get("obs_group", "policy")
        try:
            policy = load_pretrained_policy(self.pretrained_path, obs=obs, obs_group=group, num_actions=num_actions,
                                            task_id=self.task, use_ema=meta.get("pretrained_use_ema", True),
                                            device=device, payload=self.pretrained)
        except (CheckpointError, ValueError) as error:
            raise UserError(str(error)) from None
        if self.kind == FINETUNED:
            actor_cfg = dict(meta.get("actor_cfg") or {})
            # the rollouts' exploration (a DDIM eta) is not part of the chain a checkpoint is judged by
            actor_cfg.pop("ddim_eta", None)
            if act_steps is not None:
                actor_cfg["act_steps"] = act_steps
            actor = DiffusionActor(policy, group, **actor_cfg).to(device)
            actor.finetuned.load_state_dict(self.payload["actor_state_dict"])
            if not torch.allclose(actor.pretrained_fingerprint().cpu(), self.payload["pretrained_fingerprint"].cpu()):
                raise UserError(f"{self.path} was fine-tuned from a different pre-trained policy than "
                                f"{self.pretrained_path} holds now")
        else:
            from ..rl.dppo.config import DiffusionActorCfg

            sampler = sampler or policy.cfg.sampler
            steps = ft_denoising_steps or DiffusionActorCfg().ft_denoising_steps
            steps = min(steps, len(policy.model.sampling_timesteps(sampler)))
            actor = DiffusionActor(policy, group, sampler=sampler, ft_denoising_steps=steps,
                                   act_steps=act_steps).to(device)
        return actor.eval()
