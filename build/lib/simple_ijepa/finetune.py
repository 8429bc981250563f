"""`python -m simple_ijepa.finetune`: the command is simple_ijepa/cli/finetune.py."""
from .cli.finetune import cli, main, parse_args  # noqa: F401

if __name__ == "__main__":
    cli()
