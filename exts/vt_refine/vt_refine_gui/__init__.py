"""Omniverse Kit extension of vt_refine: a panel to run a policy on a task and watch the four pads."""

from .extension import VTRefineExtension  # noqa: F401
