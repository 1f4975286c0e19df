"""User-facing errors: the command-line tools print these as one clear line and exit non-zero,
without a traceback (a traceback is for bugs, not for bad input)."""


class UserError(Exception):
    """Bad input from the user (unknown task, missing file, bad value); the message says what to do."""

    exit_code = 2
