"""Small shared utilities: errors, devices, atomic files."""

from .errors import UserError  # noqa: F401
