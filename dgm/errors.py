"""Errors that the CLI turns into one clear line and an exit code.

Anything raised as a `UsageError` is the user's input being wrong (exit 2);
`DgmError` is an environment problem the user must fix (exit 2 as well, since
nothing ran). Everything else is a bug and keeps its traceback.
"""


class DgmError(Exception):
    """A failure with a message meant for the user, not a traceback."""

    exit_code = 2


class UsageError(DgmError):
    """Bad input: unknown ids, bad config, missing files."""


class NotFound(UsageError):
    """An id (task, agent, campaign, benchmark) that does not exist."""


class DockerUnavailable(DgmError):
    """No Docker engine answers."""


class ImageUnavailable(DgmError):
    """A sandbox image is missing and cannot be produced."""


class ArchiveUnavailable(DgmError):
    """The archive database cannot be opened."""


class BudgetExceeded(DgmError):
    """The campaign's hard spending cap would be crossed by the next call."""
