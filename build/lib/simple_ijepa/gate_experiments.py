"""`python -m simple_ijepa.gate_experiments` (the original README's command): the command is
simple_ijepa/cli/gates.py."""
from .cli.gates import cli, main, parse_args  # noqa: F401

if __name__ == "__main__":
    cli()
