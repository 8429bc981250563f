"""Checks shared by the command-line tools, run before any work (loading a checkpoint or a dataset),
so that a wrong argument costs a second, not a run. A new tool gets them by building its parser
with `parser` and its arguments with these types:

    p = checks.parser("python -m simple_ijepa.tool", "what it does")   # errors: one line, exit 2
    p.add_argument("--batch_size", type=checks.positive_int, default=256)
    p.add_argument("--num_workers", type=checks.non_negative_int, default=0)
    p.add_argument("--seed", type=checks.seed, default=0)
    p.add_argument("--device", type=checks.device, default=checks.default_device())
    args = p.parse_args(argv)
    checks.output_file(args.out, "--out", overwrite=args.overwrite, inputs=[args.ckpt_path])
    checks.output_dir(args.out_dir, "--out_dir")
    checks.student_source(args.ckpt_path, args.student)

Argument errors exit 2 with `error: argument --NAME: why`; the path checks raise ConfigError
naming the argument, which `errors.run_command` prints as one line before exiting 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from ..errors import CheckpointError, ConfigError
from ..utils.atomic import write_text_atomic

SEED_LIMIT = 2**32  # numpy's seeds are 32-bit


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows each flag's default (argparse's ArgumentDefaultsHelpFormatter), but not a None
    default: that flag's help says what happens without it."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, `error: argument --NAME: why`, exit status 2
    (argparse's own print the usage above it). Flags are spelt with underscores (`--ckpt_path`, as
    the seed README); the hyphen spelling of any of them (`--ckpt-path`) is accepted too."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")

    def parse_known_args(self, args=None, namespace=None):
        flags = set(self._option_string_actions)
        args = [self._underscored(a, flags) for a in (sys.argv[1:] if args is None else args)]
        return super().parse_known_args(args, namespace)

    @staticmethod
    def _underscored(arg: str, flags: set[str]) -> str:
        """`--ckpt-path[=V]` -> `--ckpt_path[=V]` when that is a flag of this parser; else unchanged."""
        if not arg.startswith("--") or "-" not in arg[2:]:
            return arg
        name, eq, value = arg.partition("=")
        spelt = "--" + name[2:].replace("-", "_")
        return spelt + eq + value if spelt in flags and name not in flags else arg


def parser(prog: str, description: str) -> OneLineParser:
    """The parser of a tool: one-line errors, exit status 2, defaults in --help, hyphens accepted."""
    return OneLineParser(prog=prog, description=description, formatter_class=HelpFormatter)


def add_output(p: argparse.ArgumentParser) -> None:
    """--output FILE.json: every figure the tool prints, also as JSON (timm's --results-file)."""
    p.add_argument("--output", metavar="FILE.json", default=None,
                   help="also write every figure printed, as JSON, to this file (replaced if it exists)")


def json_output(path: str | None, inputs=()) -> None:
    """Check --output before any work (a file in a writable folder, not an input); None: nothing asked."""
    if path is not None:
        output_file(path, "--output", overwrite=True, inputs=inputs)


def write_json(path: str | None, result: dict) -> None:
    """Write `result` to `path` (None: nothing) atomically, as indented JSON; numpy scalars as numbers."""
    if path is None:
        return

    def plain(value):  # numpy / torch scalars and arrays as numbers and lists; anything else as text
        return value.tolist() if hasattr(value, "tolist") else str(value)

    write_text_atomic(path, json.dumps(result, indent=1, default=plain) + "\n")


def int_at_least(low: int):
    """An argparse type: a whole number >= `low`."""
    def whole_number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{text} is not a whole number >= {low}")
        return value
    whole_number.__name__ = f"int_at_least_{low}"
    return whole_number


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def seed(text: str) -> int:
    """An argparse type: a seed numpy accepts, a whole number in [0, 2**32)."""
    value = non_negative_int(text)
    if value >= SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"{text} is not below 2**32 = {SEED_LIMIT} (numpy's seeds are 32-bit)")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number > 0")
    return value


def default_device() -> str:
    """cuda when this machine has a GPU, else cpu."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def device(text: str) -> str:
    """An argparse type: a torch device this machine has (cpu, cuda, cuda:N, mps)."""
    import torch

    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; use cpu, cuda, cuda:N or mps")
    if dev.type == "cuda" and not (torch.cuda.is_available() and (dev.index or 0) < torch.cuda.device_count()):
        raise argparse.ArgumentTypeError(f"{text!r}: this machine has {torch.cuda.device_count()} CUDA device(s); "
                                         "use cpu" + (" or cuda:0" if torch.cuda.is_available() else ""))
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: MPS is not available on this machine; use cpu")
    return text


def _writable_folder(folder: str, option: str, path: str) -> None:
    """ConfigError unless a file can be created in `folder` (tried: permissions alone do not tell,
    e.g. /proc, a read-only mount, or root)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".ijepa-write-check-", dir=folder)
    except OSError as e:
        raise ConfigError(f"{option} {path!r}: cannot write there, no file can be created in {folder!r} "
                          f"({e.strerror or e}); pick a folder you can write to.") from None
    os.close(fd)
    os.remove(probe)


def _same_file(path: str, inputs) -> bool:
    real = os.path.realpath(path)
    return any(i is not None and os.path.realpath(i) == real for i in inputs)


def output_file(path: str, option: str, overwrite: bool = False, inputs=()) -> None:
    """Check a file the tool will write, before any work: not a folder, not one of `inputs`, not an
    existing file unless `overwrite`, in an existing folder that can be written. Raises ConfigError
    naming `option`."""
    if _same_file(path, inputs):
        raise ConfigError(f"{option} {path!r} is the input file; write to another path.")
    if os.path.isdir(path):
        raise ConfigError(f"{option} {path!r} is a folder; give a file name inside it.")
    if os.path.lexists(path) and not overwrite:
        raise ConfigError(f"{option} {path!r} already exists; pass --overwrite to replace it, or pick another path.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ConfigError(f"{option} {path!r}: the folder {folder!r} does not exist; create it first.")
    _writable_folder(folder, option, path)


def output_dir(path: str, option: str, inputs=()) -> None:
    """Check a folder the tool will write into (created if missing), before any work: not an
    existing file, not one of `inputs`, and the nearest existing folder above it can be written.
    Raises ConfigError naming `option`."""
    if _same_file(path, inputs) or (os.path.lexists(path) and not os.path.isdir(path)):
        raise ConfigError(f"{option} {path!r} is an existing file, not a folder; pick a folder path.")
    folder = os.path.abspath(path)
    while not os.path.isdir(folder):
        if os.path.lexists(folder):
            raise ConfigError(f"{option} {path!r}: {folder!r} is a file, so no folder can be made under it.")
        folder = os.path.dirname(folder)
    _writable_folder(folder, option, path)


def student_source(path: str, student: bool, option: str = "--ckpt_path") -> None:
    """With --student, `path` must be a training checkpoint: an encoder file holds one encoder and
    no student. Reads the file lazily (the weights stay on disk)."""
    if not student or not os.path.isfile(path):  # a missing file: the loader says so
        return
    from ..checkpoints import ENCODER_FORMAT, read_checkpoint

    if not path.endswith(".safetensors"):  # a .safetensors file is always an encoder file
        try:
            if read_checkpoint(path, option, mmap=True)["format"] != ENCODER_FORMAT:
                return
        except CheckpointError:  # unreadable: the loader says why
            return
    raise ConfigError(f"--student: {option} {path!r} is an encoder file, which holds one encoder and no "
                      "student; leave --student out, or pass the run's training checkpoint (training_model_*.pth).")
