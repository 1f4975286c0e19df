"""Isaac Lab tasks of vt_refine (imported by ``isaaclab train|play|list_envs`` via the
``isaaclab.tasks`` entry point, which registers them with gymnasium).

May import ``sensors``, ``assets``, ``utils``, ``task_ids`` and ``rl`` (the agent cfgs registered with each task).
"""

from .assembly import config  # noqa: F401  (registers VTRefine-*-Aloha)
