"""The original README's training entry point (`scripts.train_ddp`, called by run_ddp.py): the
command is simple_ijepa/cli/train.py."""
from simple_ijepa.cli.train import main

if __name__ == "__main__":
    main()
