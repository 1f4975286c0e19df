"""Small shared utilities: errors, devices, atomic files, input paths, the point-cloud channel layout.

Imports nothing else of vt_refine.
"""

from .errors import UserError  # noqa: F401
