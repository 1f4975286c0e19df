"""Training windows over demonstration files: observation history and action chunk for every step.

Symbols used in shapes:
    N   steps over all episodes of all files (one sample per step)
    T   steps of one episode
    To  observation history (2)
    Ta  chunk length (16)
    Da  action dim (16)
    Np  points per cloud
    C   point channels (5: x, y, z, value, flag)
    Dq  joint dim (16)

Sample of step t of an episode with steps 0..T-1 (the DPPO / Diffusion Policy convention)::

    obs:     steps t-To+1 .. t     -- before the episode start, the first observation is repeated
    actions: steps t .. t+Ta-1     -- past the episode end, the last action is repeated

so every step is a sample, including the first (no history yet) and the last (nothing left to do:
the policy learns to hold the final pose). Values are in env units; the policy normalises them with
``stats()``.

All arrays are loaded once into memory (demo files hold tens of episodes); a sample is two index_select
calls per key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..utils.errors import UserError
from .hdf5_dataset import DemoReader

__all__ = ["DemoChunkDataset"]


def _file_path(key: str) -> str:
    """Observation key -> dataset path: "joint_pos" -> "obs/joint_pos"; "states/x" stays as it is."""
    return key if key.startswith(("obs/", "states/")) else f"obs/{key}"


def _shape_matches(actual: tuple[int, ...], expected: Sequence[int | None]) -> bool:
    """Same rank and equal sizes; None in ``expected`` accepts any size."""
    return len(actual) == len(expected) and all(e is None or a == e for a, e in zip(actual, expected))


def _episode_problem(arrays: dict[str, np.ndarray], length: int, horizon: int) -> str | None:
    """What makes an episode unusable for training, in words, or None (windows past an episode's ends repeat its
    first observation and last action, so any length >= 1 makes windows)."""
    if length < 1:
        return "has no steps"
    for key, arr in arrays.items():
        if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
            step = int(np.nonzero(~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1))[0][0])
            return f"has NaN or inf in '{key}' (first at step {step})"
    return None


class DemoChunkDataset(Dataset):
    """Samples ``{"obs": {key: Tensor (To, ...)}, "actions": Tensor (Ta, Da)}``, one per demonstration step.

    Args:
        paths: One demo file (.hdf5, Isaac Lab recorder layout) or several; their episodes are concatenated.
        obs_keys: Observation keys in the files ("joint_pos" means "obs/joint_pos"; "states/<key>" reads a
            state), e.g. ("point_cloud", "joint_pos").
        obs_steps: To, observation history length (steps).
        horizon: Ta, action chunk length (steps).
        key_map: File key -> policy key for renaming (e.g. {"joint_states": "joint_pos"}); keys not in the
            map keep their name.
        expected_shapes: Per-sample shapes the policy expects, policy key -> (To, ...) and "actions" ->
            (Ta, Da); None entries accept any size. E.g. ``{**cfg.obs_shapes, "actions": cfg.action_shape}``.
        success_only: Skip episodes whose ``success`` attribute is false.
        dtype: Floating dtype of the returned tensors (non-float data such as masks keep their dtype).
        max_episodes: Load only the first this many episodes (files in order; None: all), e.g. for a study of how
            many demonstrations a policy needs.
        skip_bad: Leave out episodes with NaN/inf in their actions or observations (or no steps), naming them in
            :attr:`skipped`; False refuses them with a UserError that names the file, the demo and the key.

    Raises:
        UserError: a file is missing or damaged, a key is missing, files disagree on a shape, or the data
            does not have the expected shapes (the message names both sides).
    """

    def __init__(
        self,
        paths: str | os.PathLike | Sequence[str | os.PathLike],
        obs_keys: Sequence[str],
        obs_steps: int = 2,
        horizon: int = 16,
        *,
        key_map: Mapping[str, str] | None = None,
        expected_shapes: Mapping[str, Sequence[int | None]] | None = None,
        success_only: bool = False,
        dtype: torch.dtype = torch.float32,
        max_episodes: int | None = None,
        skip_bad: bool = False,
    ):
        if max_episodes is not None and max_episodes < 1:
            raise UserError(f"max_episodes must be >= 1 (or None for all), got {max_episodes}")
        self.max_episodes = max_episodes
        self.skip_bad = skip_bad
        self.skipped: list[str] = []
        """"<file>:<demo> (<why>)" of every episode left out by ``skip_bad``."""
        if obs_steps < 1:
            raise UserError(f"obs_steps (To) must be >= 1, got {obs_steps}")
        if horizon < 1:
            raise UserError(f"horizon (Ta) must be >= 1, got {horizon}")
        if isinstance(obs_keys, str):
            obs_keys = [obs_keys]
        if not obs_keys:
            raise UserError("obs_keys is empty; name the observations to load, e.g. ['point_cloud', 'joint_pos']")
        self.paths = [Path(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
        if not self.paths:
            raise UserError("DemoChunkDataset needs at least one demo file")
        self.obs_steps, self.horizon = int(obs_steps), int(horizon)
        key_map = dict(key_map or {})
        self.obs_paths = {_file_path(k): key_map.get(k, key_map.get(_file_path(k), k.split("/")[-1]))
                          for k in obs_keys}
        """File dataset path -> policy key."""
        policy_keys = list(self.obs_paths.values())
        if len(set(policy_keys)) != len(policy_keys) or "actions" in policy_keys:
            raise UserError(f"observation keys {policy_keys} (after key_map) must be distinct and not 'actions'")

        actions, obs, lengths = self._load(success_only)
        if max_episodes is not None and len(lengths) < max_episodes:
            raise UserError(f"{max_episodes} demos asked for but {', '.join(map(str, self.paths))} hold only "
                            f"{len(lengths)}; collect more (`vt-refine collect` resumes a file) or ask for fewer")
        if not lengths:
            raise UserError(f"no {'successful ' if success_only else ''}episodes in "
                            f"{', '.join(map(str, self.paths))}; collect demonstrations first")
        self.episode_lengths: list[int] = lengths
        """T of every loaded episode (steps), in file then episode order."""

        def to_tensor(arr: np.ndarray) -> torch.Tensor:
            t = torch.from_numpy(np.ascontiguousarray(arr))
            return t.to(dtype) if t.is_floating_point() else t

        self.actions = to_tensor(np.concatenate(actions))  # Tensor of shape (N, Da)
        self.obs = {key: to_tensor(np.concatenate(parts)) for key, parts in obs.items()}  # key -> (N, ...)
        ends = torch.tensor(np.cumsum(lengths), dtype=torch.long)  # (episodes,) exclusive end of each episode
        starts = ends - torch.tensor(lengths, dtype=torch.long)
        episode_of_step = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))  # (N,)
        self._first = starts[episode_of_step]  # Tensor of shape (N,), first step of the sample's episode
        self._last = ends[episode_of_step] - 1  # Tensor of shape (N,), last step of the sample's episode
        self._obs_offsets = torch.arange(-self.obs_steps + 1, 1)  # (To,) oldest first, current step last
        self._act_offsets = torch.arange(self.horizon)  # (Ta,)
        if expected_shapes is not None:
            self.check_shapes(expected_shapes)

    @classmethod
    def from_cfg(cls, paths: str | os.PathLike | Sequence[str | os.PathLike], cfg: Any,
                 key_map: Mapping[str, str] | None = None, **kwargs: Any) -> DemoChunkDataset:
        """Dataset for a ``DiffusionPolicyCfg``: its observations, To, Ta, and a check of every shape.

        ``key_map`` (file key -> policy key) is inverted to find the file key of each policy observation.
        """
        key_map = dict(key_map or {})
        inverse = {policy: file for file, policy in key_map.items()}
        obs_keys = [inverse.get(key, key) for key in cfg.obs_shapes]
        return cls(paths, obs_keys, obs_steps=cfg.obs_steps, horizon=cfg.horizon_steps, key_map=key_map,
                   expected_shapes={**cfg.obs_shapes, "actions": cfg.action_shape}, **kwargs)

    # ------------------------------------------------------------------ loading
    def _load(self, success_only: bool) -> tuple[list[np.ndarray], dict[str, list[np.ndarray]], list[int]]:
        actions: list[np.ndarray] = []
        obs: dict[str, list[np.ndarray]] = {key: [] for key in self.obs_paths.values()}
        lengths: list[int] = []
        first_shapes: dict[str, tuple[tuple[int, ...], Path]] = {}
        for path in self.paths:
            with DemoReader(path) as reader:
                wanted = ["actions", *self.obs_paths]
                missing = [p for p in wanted if p not in reader.schema]
                if missing and reader.num_episodes():
                    raise UserError(f"demo file {path} has no {', '.join(repr(m) for m in missing)}; it holds "
                                    f"{', '.join(reader.keys)} -- fix obs_keys / key_map or re-collect")
                for p in wanted:  # every file must agree on the per-step shapes
                    if p not in reader.schema:
                        continue
                    shape = reader.schema[p][0]
                    seen = first_shapes.setdefault(p, (shape, path))
                    if seen[0] != shape:
                        raise UserError(f"'{p}' has per-step shape {shape} in {path} but {seen[0]} in {seen[1]}; "
                                        "demo files of one dataset must share their layout")
                successes = reader.successes()
                for i, name in enumerate(reader.episode_names):
                    if success_only and not successes[i]:
                        continue
                    if self.max_episodes is not None and len(lengths) >= self.max_episodes:
                        break
                    episode = {"actions": reader.read(name, "actions")}
                    episode.update({p: reader.read(name, p) for p in self.obs_paths})
                    problem = _episode_problem(episode, reader.lengths[i], self.horizon)
                    if problem is not None:
                        if not self.skip_bad:
                            raise UserError(f"demo {name} of {path} {problem}; re-collect it, or pass --skip_bad_demos "
                                            "to train without the demos that have such problems")
                        self.skipped.append(f"{path}:{name} ({problem})")
                        continue
                    actions.append(episode["actions"])
                    for p, key in self.obs_paths.items():
                        obs[key].append(episode[p])
                    lengths.append(reader.lengths[i])
        return actions, obs, lengths

    # ------------------------------------------------------------------ checks
    @property
    def sample_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-sample shapes: policy key -> (To, ...), "actions" -> (Ta, Da)."""
        shapes = {key: (self.obs_steps, *t.shape[1:]) for key, t in self.obs.items()}
        shapes["actions"] = (self.horizon, *self.actions.shape[1:])
        return shapes

    def check_shapes(self, expected: Mapping[str, Sequence[int | None]]) -> None:
        """UserError unless every expected key exists with the expected per-sample shape."""
        have = self.sample_shapes
        files = ", ".join(map(str, self.paths))
        for key, shape in expected.items():
            if key not in have:
                raise UserError(f"the policy expects observation '{key}' but the demo data ({files}) provides "
                                f"{sorted(have)}; add it to obs_keys or map a file key to it with key_map")
            if not _shape_matches(have[key], tuple(shape)):
                raise UserError(f"'{key}' samples have shape {have[key]} in the demo data ({files}) but the policy "
                                f"expects {tuple(shape)}; fix the policy config (obs_steps, horizon_steps, "
                                "joint_dim, action_dim, num_points, point_channels) or use matching demos")

    # ------------------------------------------------------------------ dataset protocol
    def __len__(self) -> int:
        return int(self.actions.shape[0])

    @property
    def num_episodes(self) -> int:
        return len(self.episode_lengths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Sample of one step: {"obs": {key: Tensor (To, ...)}, "actions": Tensor (Ta, Da)}."""
        n = len(self)
        index = int(index)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"sample index {index} out of range for {n} samples")
        first, last = int(self._first[index]), int(self._last[index])
        obs_idx = (index + self._obs_offsets).clamp(min=first)  # repeat the first obs before the start
        act_idx = (index + self._act_offsets).clamp(max=last)  # repeat the last action after the end
        obs = {key: t.index_select(0, obs_idx) for key, t in self.obs.items()}
        return {"obs": obs, "actions": self.actions.index_select(0, act_idx)}

    def stats(self) -> dict[str, dict[str, np.ndarray]]:
        """Per-dim min/max over all steps: "actions" (Da,) and every floating observation (last axis).

        The format of ``DiffusionPolicy.from_stats`` / ``trainer.merge_stats``: {"actions": {"min", "max"},
        "joint_pos": {"min", "max"}, ...} with float32 numpy arrays. Padding repeats existing values,
        so the statistics of the windows equal those of the steps.
        """
        out: dict[str, dict[str, np.ndarray]] = {}
        for key, t in {"actions": self.actions, **self.obs}.items():
            if not t.is_floating_point():
                continue
            flat = t.reshape(-1, t.shape[-1]) if t.dim() > 1 else t.reshape(-1, 1)
            out[key] = {"min": flat.amin(0).float().numpy(), "max": flat.amax(0).float().numpy()}
        return out
