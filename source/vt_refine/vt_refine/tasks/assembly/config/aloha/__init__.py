"""Gym registrations of the ALOHA assembly tasks: ``VTRefine-<Task>-Aloha``."""

import gymnasium as gym

from . import agents

TASKS = {
    "PegInHole": "PegInHoleAlohaEnvCfg",
    "NutBolt": "NutBoltAlohaEnvCfg",
    "Bayonet": "BayonetAlohaEnvCfg",
    "Connector": "ConnectorAlohaEnvCfg",
    "ShaftCollar": "ShaftCollarAlohaEnvCfg",
}
"""Task name -> env cfg class in ``aloha_env_cfg``."""

TASK_IDS = tuple(f"VTRefine-{name}-Aloha" for name in TASKS)

for _name, _cfg in TASKS.items():
    gym.register(
        id=f"VTRefine-{_name}-Aloha",
        # Isaac Lab's ManagerBasedRLEnv, built after a device check (see assembly_env.py)
        entry_point="vt_refine.tasks.assembly.assembly_env:make_assembly_env",
        disable_env_checker=True,
        kwargs={
            "env_cfg_entry_point": f"{__name__}.aloha_env_cfg:{_cfg}",
            "rsl_rl_cfg_entry_point": f"{agents.__name__}.rsl_rl_ppo_cfg:AssemblyPPORunnerCfg",
            "default_agent": "rsl_rl",
        },
    )
