"""Robot-specific task configurations."""

from . import aloha  # noqa: F401
