"""`python -m simple_ijepa.evaluate`: the command is simple_ijepa/cli/evaluate.py."""
from .cli.evaluate import cli, main, parse_args  # noqa: F401

if __name__ == "__main__":
    cli()
