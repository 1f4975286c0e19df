"""MDP terms of the assembly tasks: Isaac Lab's stock terms plus the project's own.

Each module holds short pure functions over batched tensors (or small ManagerTermBase classes where
a term keeps per-env state).
"""

from isaaclab.envs.mdp import *  # noqa: F401, F403

from .events import *  # noqa: F401, F403
from .observations import *  # noqa: F401, F403
from .point_cloud import *  # noqa: F401, F403
from .rewards import *  # noqa: F401, F403
from .success import *  # noqa: F401, F403
from .terminations import *  # noqa: F401, F403
