"""Loading the pre-trained diffusion policy that DPPO starts from, checked against the env it will act in.

The checks happen before anything is built, and every error names both sides: the checkpoint's value and the
env's (or the runner cfg's).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import torch
from tensordict import TensorDict

from vt_refine.policies.diffusion import CheckpointMismatchError, DiffusionPolicy, load_checkpoint, load_policy

__all__ = ["load_pretrained_policy", "env_policy_obs_shapes"]


def env_policy_obs_shapes(obs: TensorDict, group: str) -> dict[str, tuple[int, ...]] | tuple[int, ...]:
    """Per-env shapes of the actor's observation group: {key: shape} for a TensorDict group, the flat shape
    (Do,) for a plain tensor group."""
    if group not in obs.keys():
        raise ValueError(f"observation group '{group}' (obs_groups['actor']) is not among the env's groups "
                         f"{list(obs.keys())}")
    value = obs[group]
    if isinstance(value, torch.Tensor):
        return tuple(value.shape[1:])
    return {key: tuple(value[key].shape[1:]) for key in value.keys()}


def load_pretrained_policy(
    path: str | Path | None,
    *,
    obs: TensorDict,
    obs_group: str,
    num_actions: int,
    task_id: str | None = None,
    use_ema: bool = True,
    device: str | torch.device = "cpu",
    payload: dict | None = None,
) -> DiffusionPolicy:
    """Load the checkpoint and check it fits the env.

    Args:
        path: Checkpoint written by ``pretrain`` (``.../checkpoints/final.pt``).
        obs: The env's current observations (rsl-rl TensorDict); ``obs[obs_group]`` feeds the policy.
        obs_group: The actor's observation group.
        num_actions: The env's action dim Da.
        task_id: Task the checkpoint must have been trained for; None skips the check.
        use_ema: Load the EMA weights when the checkpoint has them.
        payload: The file's contents when the caller has read it already (it is not read again).

    Raises:
        ValueError: no checkpoint given.
        FileNotFoundError: no such file.
        CheckpointCorruptError: unreadable file.
        CheckpointMismatchError: other task, other observation shapes or other action dim (both sides named).
    """
    if path is None or str(path).strip() == "":
        raise ValueError("DPPO fine-tunes a pre-trained diffusion policy, but no checkpoint was given: set "
                         "agent.pretrained_checkpoint=<run>/checkpoints/final.pt (written by vt_refine pretraining)")
    path = Path(path).expanduser()
    payload = load_checkpoint(path, expected_task_id=task_id, payload=payload)  # missing / corrupt / other task
    _check_shapes(path, payload, env_policy_obs_shapes(obs, obs_group), obs_group, num_actions)
    return load_policy(path, use_ema=use_ema, device=device, payload=payload)


def _check_shapes(path: Path, payload: Mapping, env_shapes: Mapping | tuple, group: str, num_actions: int) -> None:
    saved = {key: tuple(shape) for key, shape in payload["obs_shapes"].items()}
    action_dim = int(payload["action_shape"][1])
    if action_dim != num_actions:
        raise CheckpointMismatchError(f"checkpoint {path} predicts actions of dim Da = {action_dim} but the env takes "
                                      f"{num_actions} actions per step; pick the checkpoint of this robot/task")
    if isinstance(env_shapes, tuple):
        # a flat group can only feed a single-key policy, value for value
        want = sum(math.prod(shape) for shape in saved.values())
        if len(saved) != 1 or env_shapes != (want,):
            raise CheckpointMismatchError(
                f"checkpoint {path} expects observations {saved} but the env's '{group}' group is one flat tensor of "
                f"per-env shape {env_shapes}; the shapes must match (give the group separate terms: "
                "concatenate_terms=False)")
        return
    problems = []
    for key, shape in saved.items():
        got = env_shapes.get(key)
        if got is None:
            problems.append(f"'{key}': checkpoint {shape} vs env absent")
        elif key == "point_cloud":
            # the PointNet takes any point count Np; history and channels must match
            if len(got) != 3 or (got[0], got[2]) != (shape[0], shape[2]):
                problems.append(f"'{key}': checkpoint (To, Np, C) = {shape} vs env {got}")
        elif got != shape:
            problems.append(f"'{key}': checkpoint {shape} vs env {got}")
    if problems:
        raise CheckpointMismatchError(f"checkpoint {path} observation shapes differ from the env's '{group}' group "
                                      f"(per env): {'; '.join(problems)}")
