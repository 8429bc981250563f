"""`python -m simple_ijepa.demo`: the command is simple_ijepa/cli/demo.py."""
from .cli.demo import cli, main  # noqa: F401

if __name__ == "__main__":
    cli()
