"""DPPO fine-tuning agents of the assembly tasks (``--agent rsl_rl_dppo_cfg_entry_point``).

Each task's cfg pins ``task_id`` so a checkpoint pre-trained on another task (or on the visual-only variant)
is refused with a message naming both. The hold action of envs that end mid-decision maps the last joint
observation back to the [-1, 1] action space through the joint limits.
"""

from isaaclab.utils import configclass

from vt_refine.assets.aloha import ALOHA_JOINT_NAMES, joint_limits
from vt_refine.rl.dppo import DPPORunnerCfg

_LIMITS = joint_limits()


@configclass
class AssemblyDPPORunnerCfg(DPPORunnerCfg):
    experiment_name = "vt_refine_dppo"

    def __post_init__(self):
        self.algorithm.hold_obs_low = [_LIMITS[n][0] for n in ALOHA_JOINT_NAMES]
        self.algorithm.hold_obs_high = [_LIMITS[n][1] for n in ALOHA_JOINT_NAMES]


def _for_task(task_id: str):
    @configclass
    class _TaskDPPORunnerCfg(AssemblyDPPORunnerCfg):
        def __post_init__(self):
            super().__post_init__()
            self.task_id = task_id

    _TaskDPPORunnerCfg.__name__ = _TaskDPPORunnerCfg.__qualname__ = task_id.replace("-", "") + "DPPORunnerCfg"
    return _TaskDPPORunnerCfg


TASK_DPPO_CFGS = {}
"""Task id -> its DPPO runner cfg class (filled in by the task registrations)."""


def register_task_cfg(task_id: str) -> str:
    """Create the DPPO cfg class of ``task_id`` in this module; return its name for the gym entry point."""
    cls = _for_task(task_id)
    globals()[cls.__name__] = cls
    TASK_DPPO_CFGS[task_id] = cls
    return cls.__name__
