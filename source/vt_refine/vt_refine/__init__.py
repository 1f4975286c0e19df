"""vt_refine: VT-Refine (visuo-tactile bimanual assembly) as an Isaac Lab 3.0 extension.

Importing this package is cheap: Isaac Lab, Warp and torch are imported by the sub-packages that
need them, so the command-line tools can answer ``--help`` and report bad input quickly.

Layers, bottom up: ``utils``, ``task_ids``; ``assets``, ``policies``, ``data``; ``sensors``, ``rl``; ``tasks``;
``expert``; ``app`` (the commands). Each package's docstring says what it may import.
"""

__version__ = "0.1.0"
