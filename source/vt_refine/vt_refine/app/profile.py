"""One run profile (``quick``, ``paper`` or a YAML path), read once at the edge and checked whole.

A profile has five sections: ``policy:`` and ``pretrain:`` (the diffusion policy and its behaviour cloning,
:class:`~vt_refine.policies.diffusion.DiffusionProfile`), ``collect:`` and ``evaluate:`` (stage settings below)
and ``finetune:`` (``num_envs`` plus fields of the DPPO runner cfg itself: ``max_iterations``,
``num_steps_per_env``, ``actor:``, ``algorithm:``, ...). An empty file, an unknown section or key, or a value of
the wrong type is refused with one line before any work starts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..utils.errors import UserError

SECTIONS = ("policy", "pretrain", "collect", "evaluate", "finetune")
"""Top-level sections of a profile YAML."""


def profile_dir() -> Path:
    """The shipped profiles: the repository's ``config/``, package data ``vt_refine/profiles`` (a link to it in a
    checkout, a copy in a wheel), so they are found the same way installed or not."""
    folder = Path(str(resources.files("vt_refine") / "profiles"))
    if not folder.is_dir():
        raise UserError(f"the profiles folder {folder} is missing (a broken install: reinstall vt_refine); a profile "
                        "can also be given as a YAML path")
    return folder


def known_profiles() -> list[str]:
    return sorted(p.stem for p in profile_dir().glob("*.yaml"))


@dataclass(frozen=True)
class CollectSettings:
    num_demos: int = 30
    """Successful expert demos to collect (paper: 30 per task)."""
    num_envs: int = 8
    """Parallel envs of the collection (episodes run in batches of it)."""


@dataclass(frozen=True)
class EvaluateSettings:
    num_episodes: int = 16
    """Episodes per evaluated policy (same seeds for every policy of a run)."""
    num_envs: int = 8
    """Parallel envs of an evaluation."""
    seed_offset: int = 1000
    """Evaluation seed = run seed + this, so a policy is never judged on its own demos' initial states."""
    curve_every: int = 0
    """Also evaluate every n-th fine-tuning checkpoint (0: only the pre-trained and the final one)."""
    curve_episodes: int = 16
    """Episodes of each of those intermediate evaluations."""


@dataclass(frozen=True)
class FinetuneSettings:
    num_envs: int = 8
    """Parallel envs of the DPPO rollouts."""
    progress_reward_weight: float = 0.0
    """Weight of the task's potential-based progress term (``mdp.assembly_progress``) next to the sparse success
    reward during fine-tuning; 0 = the paper's sparse reward alone. Below 0.5, so that an episode's return still
    tells a success (>= 1 - weight) from a failure (<= weight) at the 0.5 threshold. Measured at 0.3 (peg, VT from
    10/50, 10 iterations of 16 envs): 0/50 at actor lr 1e-4 (a shuffled-advantage control fell as far), 12/50 at
    1e-5, which continued to 24 iterations fell too (rollouts ~0); no sparse-only run at 1e-5 yet (README)."""
    runner: dict = field(default_factory=dict)
    """The section's fields of the DPPO runner cfg (nested like it: ``actor: {sampler: ddim}``), checked against
    :class:`~vt_refine.rl.dppo.config.DPPORunnerCfg` at load and applied to the task's registered cfg."""

    def __post_init__(self) -> None:
        weight = self.progress_reward_weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= weight < 0.5:
            raise UserError(f"profile finetune.progress_reward_weight must be a number in [0, 0.5), got {weight!r}")

    @property
    def max_iterations(self) -> int:
        return int(self.runner_cfg().max_iterations)

    @property
    def num_steps_per_env(self) -> int:
        return int(self.runner_cfg().num_steps_per_env)

    def runner_cfg(self, base=None):
        """``base`` (default: a fresh DPPORunnerCfg) with this profile's fields applied (in place, returned)."""
        if base is None:
            from ..rl.dppo.config import DPPORunnerCfg

            base = DPPORunnerCfg()
        apply_fields(base, self.runner, "finetune")
        return base


@dataclass(frozen=True)
class Profile:
    """A profile file read once: the diffusion policy's two sections typed, the stage settings typed."""

    name: str
    """``quick``, ``paper`` or the YAML path as given."""
    path: Path
    diffusion: Any
    """:class:`~vt_refine.policies.diffusion.DiffusionProfile` (the ``policy:`` and ``pretrain:`` sections)."""
    collect: CollectSettings = field(default_factory=CollectSettings)
    evaluate: EvaluateSettings = field(default_factory=EvaluateSettings)
    finetune: FinetuneSettings = field(default_factory=FinetuneSettings)
    sections: tuple[str, ...] = SECTIONS
    """The sections the file gives (the others hold their defaults)."""

    @classmethod
    def load(cls, name_or_path: str | Path) -> Profile:
        """Read and check a profile by name (a file in :func:`profile_dir`) or by path; UserError when it is bad."""
        import yaml

        path = Path(name_or_path)
        if not path.suffix:  # a name: one of the shipped profiles
            path = profile_dir() / f"{name_or_path}.yaml"
        if not path.is_file():
            raise UserError(f"unknown profile {str(name_or_path)!r}: no {path}; known profiles: "
                            f"{', '.join(known_profiles())} (or a YAML path)")
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise UserError(f"profile {path} is not valid YAML{where}: {problem}; fix the file") from None
        start = f"copy {profile_dir() / 'quick.yaml'} to start from"
        if raw is None or raw == {}:  # training would silently run the built-in (paper-size) defaults
            raise UserError(f"profile {path} is empty; give the sections {', '.join(SECTIONS)} ({start})")
        if not isinstance(raw, dict):
            raise UserError(f"profile {path} must hold a mapping of sections ({', '.join(SECTIONS)}), "
                            f"not a {type(raw).__name__}")
        unknown = sorted(str(key) for key in raw if key not in SECTIONS)
        if unknown:
            raise UserError(f"profile {path} has unknown section(s) {', '.join(unknown)}; the sections are "
                            f"{', '.join(SECTIONS)} ({start})")
        for name in SECTIONS:
            if not isinstance(raw.get(name) or {}, dict):
                raise UserError(f"profile {path}: section {name}: must be a mapping of settings, got {raw[name]!r}")
        from ..policies.diffusion.config import ConfigError, DiffusionProfile

        try:
            diffusion = DiffusionProfile.from_dict({k: raw[k] for k in ("policy", "pretrain") if k in raw},
                                                   section=path.name)
        except ConfigError as error:
            raise UserError(f"profile {path}: {error}; fix the value") from None
        finetune = dict(raw.get("finetune") or {})
        settings = FinetuneSettings(num_envs=finetune.pop("num_envs", FinetuneSettings.num_envs),
                                    progress_reward_weight=finetune.pop("progress_reward_weight", 0.0),
                                    runner=finetune)
        profile = cls(name=str(name_or_path), path=path, diffusion=diffusion,
                      collect=_settings(CollectSettings, raw.get("collect"), f"{path.name}: collect"),
                      evaluate=_settings(EvaluateSettings, raw.get("evaluate"), f"{path.name}: evaluate"),
                      finetune=_settings(FinetuneSettings, dataclasses.asdict(settings), f"{path.name}: finetune"),
                      sections=tuple(name for name in SECTIONS if name in raw))
        profile.finetune.runner_cfg()  # unknown runner fields and wrong types are refused now, not an hour later
        return profile

    def with_pretrain(self, **changes) -> Profile:
        """This profile with ``pretrain:`` fields replaced (the command line's ``--steps``, ``--seed``)."""
        diffusion = dataclasses.replace(self.diffusion, pretrain=dataclasses.replace(self.diffusion.pretrain,
                                                                                     **changes))
        return dataclasses.replace(self, diffusion=diffusion)

    def method_settings(self) -> dict:
        """Every setting of the method, flat (``policy.unet.down_dims``, ``finetune.actor.min_sampling_std``, ...):
        the policy and pre-training sections, and fine-tuning as the runner cfg the profile makes."""
        runner = self.finetune.runner_cfg().to_dict()
        for key in ("seed", "device", "experiment_name", "run_name", "logger", "neptune_project", "wandb_project",
                    "resume", "load_run", "load_checkpoint", "pretrained_checkpoint", "task_id", "save_interval"):
            runner.pop(key, None)  # where and how a run is stored, not the method
        tree = {**self.diffusion.to_dict(), "finetune": {"num_envs": self.finetune.num_envs,
                                                         "progress_reward_weight": self.finetune.progress_reward_weight,
                                                         **runner}}
        return _flatten(tree)

    def settings_dict(self) -> dict:
        """The stage settings as plain data (run.json, the report)."""
        return {"collect": dataclasses.asdict(self.collect), "evaluate": dataclasses.asdict(self.evaluate),
                "finetune": dataclasses.asdict(self.finetune)}


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return flat


def settings_differences(profile: Profile, reference: Profile) -> list[list]:
    """[[setting, profile's value, reference's value], ...] for the method settings in which they differ."""
    ours, theirs = profile.method_settings(), reference.method_settings()
    return [[key, ours.get(key), theirs.get(key)] for key in sorted(set(ours) | set(theirs))
            if ours.get(key) != theirs.get(key)]


def _settings(cls, data: dict | None, where: str):
    """A stage-settings dataclass from its section: unknown keys and counts < 1 (0 where allowed) refused."""
    data = dict(data or {})
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(str(key) for key in data if key not in names)
    if unknown:
        raise UserError(f"profile {where}: unknown key(s) {', '.join(unknown)}; the keys are {', '.join(names)}")
    for key, value in data.items():
        if key == "runner" or isinstance(getattr(cls, key, None), float):  # floats: checked by the class
            continue
        low = 0 if key in ("curve_every", "seed_offset") else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise UserError(f"profile {where}.{key} must be a whole number >= {low}, got {value!r}")
    return cls(**data)


def apply_fields(cfg, data: dict, where: str) -> None:
    """Set ``data``'s fields on the configclass ``cfg``, recursing into nested cfgs; an unknown field or a value of
    another type than the field's (ints are taken for floats) raises a UserError naming it."""
    for key, value in data.items():
        here = f"{where}.{key}"
        known = [f.name for f in dataclasses.fields(cfg)]  # inherited fields too; never a method of the cfg
        if key not in known:
            raise UserError(f"profile {here}: no such field; the fields are {', '.join(sorted(known))}")
        current = getattr(cfg, key)
        if isinstance(value, dict) and hasattr(current, "__dataclass_fields__"):
            apply_fields(current, value, here)
            continue
        if isinstance(current, float) and isinstance(value, (int, str)) and not isinstance(value, bool):
            value = _number(value, here)
        elif current is not None and value is not None and not isinstance(value, type(current)) \
                and not (isinstance(current, (list, tuple)) and isinstance(value, (list, tuple))):
            raise UserError(f"profile {here} must be a {type(current).__name__} like its default {current!r}, "
                            f"got {value!r}")
        setattr(cfg, key, value)


def _number(value, where: str) -> float:
    """An int, or a string such as ``1e-4`` (PyYAML reads exponents without a dot as strings), as a float."""
    try:
        return float(value)
    except ValueError:
        raise UserError(f"profile {where} must be a number, got {value!r}") from None
