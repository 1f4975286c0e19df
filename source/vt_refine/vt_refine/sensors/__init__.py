"""Sensors of the VT-Refine twin: the simulated FlexiTac pads live in :mod:`.piezo_tactile`.

May import ``assets`` and ``utils``.
"""
