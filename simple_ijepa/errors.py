"""Errors that mean "the input is wrong": the message names the key or file and what to do.

The entry points print them as one paragraph (no traceback) and exit with status 2.
"""


class ConfigError(ValueError):
    """A configuration value that cannot work."""


class DatasetError(RuntimeError):
    """A dataset file that is missing, truncated or unreadable."""


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt, or from another variant or architecture."""


USER_ERRORS = (ConfigError, DatasetError, CheckpointError)
