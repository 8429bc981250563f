"""Errors that mean "the input is wrong": the message names the key or file and what to do.

The entry points print them as one line, `error: <message>` on stderr (no traceback), and exit
with status 2 (`run_command`). Besides ours, OmegaConf's and Hydra's errors about an override
(a wrong type, an unknown key) and the trainer's non-finite-loss guard are printed the same way.
"""
import sys

UNKNOWN_KEY = "no such key in TrainConfig; see docs/configuration.md for the keys and their spelling."


class ConfigError(ValueError):
    """A configuration value that cannot work."""


class DatasetError(RuntimeError):
    """A dataset file that is missing, truncated or unreadable."""


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt, or from another variant or architecture."""


USER_ERRORS = (ConfigError, DatasetError, CheckpointError)


def _loaded(module: str, name: str) -> tuple:
    """(the class `module.name`,) if that module is imported, else (): an exception of it can only
    come from a loaded module, so nothing is imported here."""
    loaded = sys.modules.get(module)
    return (getattr(loaded, name),) if loaded is not None else ()


def _one_line(text) -> str:
    """The message's lines joined into one."""
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())


def omegaconf_message(e) -> str:
    """An OmegaConf error (a value of the wrong type, an unknown key) as `Invalid config `key`: why`,
    the form of `config.validate`'s messages."""
    key = getattr(e, "full_key", None)
    if isinstance(e, (KeyError, AttributeError)):  # ConfigKeyError, ConfigAttributeError: a key TrainConfig lacks
        why = UNKNOWN_KEY
    else:  # the first line; the rest repeats full_key and the object type
        why = (str(getattr(e, "msg", None) or e).splitlines() or [""])[0]
    return f"Invalid config `{key}`: {why}" if key else f"Invalid config: {why}"


def preset_message(group: str, name: str, options) -> str:
    """`group=name` names no preset in Hydra's config group: the words of `make_config`'s experiment= error."""
    return f"Invalid config `{group}`: no preset {name!r}; there are {sorted(options)}."


def user_error_message(e: BaseException) -> str | None:
    """The one-line message of a user error, or None for anything else (a bug: its traceback shows)."""
    if isinstance(e, USER_ERRORS + _loaded("simple_ijepa.training.trainer", "NonFiniteLoss")):
        return _one_line(e)
    if isinstance(e, _loaded("omegaconf.errors", "OmegaConfBaseException")):
        return omegaconf_message(e)
    if isinstance(e, _loaded("hydra.errors", "CompactHydraException")):  # a bad override or preset name
        cause = e.__cause__
        if isinstance(cause, _loaded("omegaconf.errors", "OmegaConfBaseException")):
            return omegaconf_message(cause)
        override = getattr(e, "override", None)  # OverrideParseException: say which override did not parse
        if isinstance(override, str) and override:
            return f"Invalid override {override!r}: {_one_line(e)} (write it as key=value)"
        group, _, name = (getattr(e, "missing_cfg_file", None) or "").rpartition("/")
        if group and getattr(e, "options", None) is not None:  # experiment=NAME, no such preset: as make_config says
            return preset_message(group, name, e.options)
        return _one_line(e)
    return None


def run_command(main) -> None:
    """Console-script entry point around a command's `main()`: its return value is not an exit
    status, and a user error (bad argument, config, dataset or checkpoint) prints one line and exits with 2."""
    try:
        main()
    except Exception as e:
        message = user_error_message(e)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
