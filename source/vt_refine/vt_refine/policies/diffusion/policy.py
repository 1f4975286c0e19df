"""The policy in env units (model + normalisers) and the env-side chunk executor.

Symbols used in shapes:
    B   batch
    E   envs
    To  observation history (2)
    Np  points per cloud
    C   point channels (5: x, y, z, value, flag)
    Dq  joint dim (16)
    Ta  chunk length (16)
    Te  executed steps per chunk (8)
    Da  action dim (16)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .config import DiffusionPolicyCfg
from .model import DiffusionModel
from .normalizer import MinMaxNormalizer

__all__ = ["DiffusionPolicy", "stats_to_normalizers"]

# Accepted spellings of the two statistics groups in ``dataset.stats()``.
_ACTION_KEYS = ("actions", "action")
_JOINT_KEYS = ("joint_pos", "joints", "state")


def _pick(stats: Mapping[str, Any], keys: Sequence[str], what: str) -> tuple[Any, Any]:
    for key in keys:
        if key in stats:
            group = stats[key]
            if not isinstance(group, Mapping) or "min" not in group or "max" not in group:
                raise ValueError(f"stats['{key}'] must be a mapping with 'min' and 'max', got {group!r:.200}")
            return group["min"], group["max"]
    raise ValueError(f"dataset stats have no {what} statistics: expected one of the keys {list(keys)} "
                     f"(each {{'min': ..., 'max': ...}}), got keys {sorted(stats)}")


def stats_to_normalizers(
    stats: Mapping[str, Any], eps: float = 1e-4
) -> tuple[MinMaxNormalizer, MinMaxNormalizer]:
    """(action normaliser, joint normaliser) from ``{"actions": {"min", "max"}, "joint_pos": {"min", "max"}}``."""
    a_min, a_max = _pick(stats, _ACTION_KEYS, "action")
    q_min, q_max = _pick(stats, _JOINT_KEYS, "joint")
    return (MinMaxNormalizer.from_stats(a_min, a_max, eps=eps, name="action stats"),
            MinMaxNormalizer.from_stats(q_min, q_max, eps=eps, name="joint_pos stats"))


class DiffusionPolicy(nn.Module):
    """Diffusion model plus action/joint normalisers; inputs and outputs in env units.

    Observations: ``{"point_cloud": (B, To, Np, C), "joint_pos": (B, To, Dq)}`` plus an optional
    ``"point_mask"`` bool (B, To, Np). Actions: Tensor of shape (B, Ta, Da), joint-position targets.
    """

    def __init__(
        self,
        cfg: DiffusionPolicyCfg,
        action_normalizer: MinMaxNormalizer | None = None,
        joint_normalizer: MinMaxNormalizer | None = None,
    ):
        super().__init__()
        self.cfg = cfg
        self.model = DiffusionModel(cfg)
        self.action_normalizer = action_normalizer or MinMaxNormalizer(cfg.action_dim, eps=cfg.normalizer_eps)
        self.joint_normalizer = joint_normalizer or MinMaxNormalizer(cfg.joint_dim, eps=cfg.normalizer_eps)
        if self.action_normalizer.dim != cfg.action_dim:
            raise ValueError(f"action normaliser has {self.action_normalizer.dim} dims but policy.action_dim is "
                             f"{cfg.action_dim}; recompute the stats or fix the config")
        if self.joint_normalizer.dim != cfg.joint_dim:
            raise ValueError(f"joint normaliser has {self.joint_normalizer.dim} dims but policy.joint_dim is "
                             f"{cfg.joint_dim}; recompute the stats or fix the config")
        if cfg.relative_actions and cfg.joint_to_action is None:
            raise ValueError("policy.relative_actions needs policy.joint_to_action (the task's joint -> action map); "
                             "pre-train through `vt-refine pretrain`, which sets it from the task")

    @classmethod
    def from_stats(cls, cfg: DiffusionPolicyCfg, stats: Mapping[str, Any]) -> DiffusionPolicy:
        """New (untrained) policy whose normalisers come from ``dataset.stats()``."""
        action_norm, joint_norm = stats_to_normalizers(stats, eps=cfg.normalizer_eps)
        return cls(cfg, action_norm, joint_norm)

    def normalize_obs(self, obs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Normalise joint positions; points (metres, camera frame) and the mask pass through."""
        if "joint_pos" not in obs:
            raise ValueError(f"observation 'joint_pos' is missing; got keys {sorted(obs)}")
        out = {key: value for key, value in obs.items() if key in ("point_cloud", "point_mask")}
        out["joint_pos"] = self.joint_normalizer.normalize(obs["joint_pos"])
        return out

    def action_reference(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor | float:
        """What the network's actions are relative to: with ``relative_actions`` the action that holds the last
        observed joints, Tensor of shape (B, 1, Da); else 0."""
        if not self.cfg.relative_actions:
            return 0.0
        q = obs["joint_pos"][:, -1]
        scale, offset = (torch.tensor(row, dtype=q.dtype, device=q.device) for row in self.cfg.joint_to_action)
        return (scale * q + offset).unsqueeze(1)

    def encode_actions(self, actions: torch.Tensor, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Env-unit chunks (B, Ta, Da) -> the model's normalised targets (relative to ``action_reference``)."""
        return self.action_normalizer.normalize(actions - self.action_reference(obs))

    def decode_actions(self, actions_norm: torch.Tensor, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The model's normalised chunks (B, Ta, Da) -> env-unit joint-position targets; ``obs`` in env units."""
        return self.action_normalizer.unnormalize(actions_norm) + self.action_reference(obs)

    def loss(self, actions: torch.Tensor, obs: Mapping[str, torch.Tensor],
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Behaviour-cloning loss of a batch in env units; actions: Tensor of shape (B, Ta, Da)."""
        return self.model.loss(self.encode_actions(actions, obs), self.normalize_obs(obs), generator=generator)

    @torch.no_grad()
    def predict_chunk(
        self,
        obs: Mapping[str, torch.Tensor],
        sampler: str | None = None,
        generator: torch.Generator | None = None,
        deterministic: bool = False,
        min_std: float = 0.0,
    ) -> torch.Tensor:
        """Sample one action chunk per observation history.

        Args:
            obs: Env-unit observations (see class docstring).
            sampler: "ddpm" or "ddim"; defaults to ``cfg.sampler``.
            generator: RNG of the sampler (same seed + same obs -> same chunk).

        Returns:
            Tensor of shape (B, Ta, Da), joint-position targets in env units.
        """
        actions_norm = self.model.sample(self.normalize_obs(obs), sampler=sampler or self.cfg.sampler,
                                         generator=generator, deterministic=deterministic, min_std=min_std)
        return self.decode_actions(actions_norm, obs)
