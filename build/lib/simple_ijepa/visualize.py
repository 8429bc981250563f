"""`python -m simple_ijepa.visualize`: the command is simple_ijepa/cli/visualize.py."""
from .cli.visualize import cli, main, parse_args  # noqa: F401

if __name__ == "__main__":
    cli()
