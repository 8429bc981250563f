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


def run_command(main) -> None:
    """Console-script entry point around a command's `main()`: its return value is not an exit
    status, and a user error (bad config, dataset or checkpoint) prints one line and exits with 2."""
    import sys

    try:
        main()
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
