"""Scripted bimanual expert used to collect demonstrations."""

from .scripted_expert import PHASES, ScriptedAssemblyExpert, ScriptedExpertCfg  # noqa: F401
