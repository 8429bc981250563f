"""Shim for `torchrun ... run_ddp.py key=value ...`: calls scripts.train_ddp.main."""
from scripts.train_ddp import main

if __name__ == "__main__":
    main()
