"""Scripted bimanual expert that demonstrates the assembly tasks (collection itself is ``app.collect``).

May import ``tasks``, ``assets`` and ``utils``.
"""

from .rollout import run_expert, start_expert  # noqa: F401
from .scripted_expert import PHASES, ScriptedAssemblyExpert, ScriptedExpertCfg  # noqa: F401
