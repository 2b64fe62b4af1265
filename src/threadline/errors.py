"""Errors that end a command with a clear one-line message instead of a traceback."""


class ThreadlineError(Exception):
    """Base class: the message is shown to the user as `threadline: error: <message>`."""


class ConfigError(ThreadlineError):
    """The configuration file is unreadable or invalid."""


class UsageError(ThreadlineError):
    """The command line asks for something that cannot be done (exit status 2)."""
