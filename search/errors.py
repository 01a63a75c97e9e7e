"""The one user-facing error type, and how any error becomes the one line a person reads.

Stages raise UserError; only the CLI prints it (one line, exit 2). Other errors that end a trial or a
stage are turned into one line with the functions below before they reach a record or the console.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix: a bad file, flag, space or configuration. The message names it."""


def one_line(error: BaseException) -> str:
    """``Type: first line of the message`` (our own UserErrors need no type name): what went wrong, briefly."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if isinstance(error, UserError):
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def exception_line(traceback_text: str) -> str:
    """The last non-empty line of a printed traceback (Ray's errors arrive as one): the exception itself."""
    lines = [line.strip() for line in traceback_text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
