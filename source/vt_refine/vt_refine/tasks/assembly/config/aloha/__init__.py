"""Gym registrations of the ALOHA assembly tasks: ``VTRefine-<Task>-Aloha`` (visuo-tactile policy cloud) and
``VTRefine-<Task>-Aloha-Visual`` (the visual-only baseline: no taxel points in the policy cloud)."""

import gymnasium as gym

from . import agents
from .agents import rsl_rl_dppo_cfg

from vt_refine.task_ids import ALOHA_TASKS as TASKS  # noqa: F401  (the ids live in a light module)
from vt_refine.task_ids import TASK_IDS, VISUAL_TASK_IDS, Modality, task_for_modality  # noqa: F401

_VARIANTS = {f"VTRefine-{name}-Aloha": cfg for name, cfg in TASKS.items()}
_VARIANTS.update({task_for_modality(task_id, Modality.VISUAL): cfg.replace("EnvCfg", "VisualEnvCfg")
                  for task_id, cfg in _VARIANTS.items()})

for _task_id, _cfg in _VARIANTS.items():
    _dppo_cfg = rsl_rl_dppo_cfg.register_task_cfg(_task_id)
    gym.register(
        id=_task_id,
        # Isaac Lab's ManagerBasedRLEnv, built after a device check (see assembly_env.py)
        entry_point="vt_refine.tasks.assembly.assembly_env:make_assembly_env",
        disable_env_checker=True,
        kwargs={
            "env_cfg_entry_point": f"{__name__}.aloha_env_cfg:{_cfg}",
            # state-based PPO (a baseline; RL from scratch on the sparse reward is not expected to succeed)
            "rsl_rl_cfg_entry_point": f"{agents.__name__}.rsl_rl_ppo_cfg:AssemblyPPORunnerCfg",
            # DPPO fine-tuning of a pre-trained diffusion policy: --agent rsl_rl_dppo_cfg_entry_point
            "rsl_rl_dppo_cfg_entry_point": f"{rsl_rl_dppo_cfg.__name__}:{_dppo_cfg}",
            # PPO stays the default: DPPO cannot start without agent.pretrained_checkpoint
            "default_agent": "rsl_rl",
        },
    )
