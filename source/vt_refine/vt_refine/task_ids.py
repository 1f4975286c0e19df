"""The ids of the project's tasks, importable without Isaac Lab (commands check a task name in milliseconds,
before any heavy import); ``tasks.assembly.config.aloha`` registers exactly these with gymnasium."""

from __future__ import annotations

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

VISUAL_TASK_IDS: tuple[str, ...] = tuple(f"{task_id}-Visual" for task_id in TASK_IDS)
"""Their visual-only variants (no taxel points in the policy's cloud)."""

ALL_TASK_IDS: tuple[str, ...] = tuple(sorted(TASK_IDS + VISUAL_TASK_IDS))
