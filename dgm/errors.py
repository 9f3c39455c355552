"""Errors that the CLI turns into one clear line and an exit code.

Anything raised as a `UsageError` is the user's input being wrong (exit 2);
`DgmError` is an environment problem the user must fix (exit 2 as well, since
nothing ran); an `InfrastructureError` that stops work under way exits 1.
Everything else is a bug and keeps its traceback.
"""


class DgmError(Exception):
    """A failure with a message meant for the user, not a traceback."""

    exit_code = 2


class UsageError(DgmError):
    """Bad input: unknown ids, bad config, missing files."""


class OutputNotWritten(DgmError):
    """Work was done and recorded, but a file asked for could not be written."""

    exit_code = 1


class EvaluationStopped(DgmError):
    """An evaluation stopped before its end (its budget ran out); what finished is kept."""

    exit_code = 1


class NotFound(UsageError):
    """An id (task, agent, campaign, benchmark) that does not exist."""


class InfrastructureError(DgmError):
    """The sandbox machinery failed (the Docker engine, an image), not the agent.

    Raised instead of recording the run as the agent's error: a task run it
    interrupts stays unfinished, the way a crash leaves it, so the agent's
    score is not charged for it and `dgm resume` redoes it. A campaign stops
    on it rather than spending on children it cannot evaluate. Exit code 1
    when work had started; the missing engine or image found before any
    work is an environment problem like the others (exit 2).
    """

    exit_code = 1


class DockerUnavailable(InfrastructureError):
    """No Docker engine answers."""

    exit_code = 2


class ImageUnavailable(InfrastructureError):
    """A sandbox image is missing and cannot be produced."""

    exit_code = 2


class ModelUnavailable(InfrastructureError):
    """The model kept failing with errors worth retrying (rate limits, server
    errors, timeouts) through every retry: an outage, not the agent's doing."""


class SandboxKilled(InfrastructureError):
    """Something outside dgm (`docker kill`, `docker stop`, `docker rm -f`)
    killed a sandbox while it ran: not the agent's doing, so not its score."""


class SandboxLaunchFailed(InfrastructureError):
    """The Docker engine answers but would not start a sandbox (before any agent code ran)."""


class ArchiveUnavailable(InfrastructureError):
    """The archive database cannot be opened, or stopped answering."""

    exit_code = 2


class ArchiveIncomplete(DgmError):
    """Something the archive's rows reference (an artifact, a commit) is not
    in its directory: a wrong --archive-dir, or a damaged one. Not the fault
    of the agent being worked on, so it is never charged to it."""

    exit_code = 1


class BudgetExceeded(DgmError):
    """The campaign's hard spending cap would be crossed by the next call."""
