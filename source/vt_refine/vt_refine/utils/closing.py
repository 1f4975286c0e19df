"""A mixin for objects that hold a file: usable in ``with``, and closed when collected."""

from __future__ import annotations

from typing import Any


class ClosesOnExit:
    """Subclasses define ``close()`` (safe to call twice); ``with`` and garbage collection call it."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown or a half-built object: nothing left to release
            pass
