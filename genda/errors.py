"""The errors genda reports to a user: one leaf module every layer may import.

Each is a :class:`GendaError` whose message is one line naming the file or key, what is
wrong and what was expected. The CLI prints that line and exits with code 2; anything else
that escapes is a bug in genda, not in the user's input, and keeps its traceback.
"""

from __future__ import annotations


class GendaError(ValueError):
    """Bad input or an environment problem the user can fix; the message says how."""


class ConfigError(GendaError):
    """A config key or value is invalid; the message names the key and the valid choices."""


class DataError(GendaError):
    """A data set is missing, malformed or inconsistent; the message names the file."""


class CheckpointError(GendaError):
    """A checkpoint is missing, corrupt, unsafe, or belongs to another model / image size."""


class ReportError(GendaError):
    """Nothing to report on, or an input file that cannot be read; the message names it."""


class WriteError(GendaError):
    """A result file could not be written (disk full, no permission); nothing was changed."""


class RunLockedError(GendaError):
    """Another live process is writing the same run directory."""
