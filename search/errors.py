"""The one user-facing error type: stages raise it, only the CLI prints it (one line, exit 2)."""


class UserError(Exception):
    """A problem the user can fix: a bad file, flag, space or configuration. The message names it."""
