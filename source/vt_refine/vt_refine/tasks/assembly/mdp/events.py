"""Event terms of the assembly tasks (resets use Isaac Lab's stock terms; see the env cfg)."""

from __future__ import annotations

__all__: list[str] = []
