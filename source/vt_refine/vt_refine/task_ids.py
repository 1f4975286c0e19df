"""The ids of the project's tasks, importable without Isaac Lab (commands check a task name in milliseconds,
before any heavy import); ``tasks.assembly.config.aloha`` registers exactly these with gymnasium."""

from __future__ import annotations

from enum import Enum

ALOHA_TASKS: dict[str, str] = {
    "PegInHole": "PegInHoleAlohaEnvCfg",
    "NutBolt": "NutBoltAlohaEnvCfg",
    "Bayonet": "BayonetAlohaEnvCfg",
    "Connector": "ConnectorAlohaEnvCfg",
    "ShaftCollar": "ShaftCollarAlohaEnvCfg",
}
"""Task name -> env cfg class in ``tasks.assembly.config.aloha.aloha_env_cfg``."""

TASK_IDS: tuple[str, ...] = tuple(f"VTRefine-{name}-Aloha" for name in ALOHA_TASKS)
"""Visuo-tactile tasks."""

VISUAL_SUFFIX = "-Visual"
"""A task id with this suffix is the visual-only variant of the task without it."""

VISUAL_TASK_IDS: tuple[str, ...] = tuple(f"{task_id}{VISUAL_SUFFIX}" for task_id in TASK_IDS)
"""Their visual-only variants (no taxel points in the policy's cloud)."""

ALL_TASK_IDS: tuple[str, ...] = tuple(sorted(TASK_IDS + VISUAL_TASK_IDS))


class Modality(str, Enum):
    """What the policy's point cloud holds: visual and taxel points (VT) or visual points only."""

    VT = "vt"
    VISUAL = "visual"


def task_for_modality(task: str, modality: Modality | str) -> str:
    """The id of ``task``'s variant for ``modality``: ``VTRefine-X-Aloha`` (VT) or ``VTRefine-X-Aloha-Visual``."""
    modality = Modality(modality)
    base = task.removesuffix(VISUAL_SUFFIX)
    return base if modality is Modality.VT else f"{base}{VISUAL_SUFFIX}"


def modality_of(task: str) -> Modality:
    return Modality.VISUAL if task.endswith(VISUAL_SUFFIX) else Modality.VT
