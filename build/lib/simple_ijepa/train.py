"""`python -m simple_ijepa.train key=value ...`: pretraining from the command line, the same command
as `ijepa-train` (Hydra overrides; `experiment=NAME` picks a preset; docs/configuration.md).

In Python, `simple_ijepa.train(cfg)` is the training function (training/trainer.py). Importing this
module would put it in that name's place, so the module is callable as the same function.
"""
import sys
import types


class _TrainModule(types.ModuleType):
    def __call__(self, cfg) -> dict:
        """`simple_ijepa.train(cfg)`: run pretraining (training.trainer.train); returns its summary."""
        from .training.trainer import train

        return train(cfg)


if __name__ == "__main__":
    from .cli.train import main

    main()
else:
    sys.modules[__name__].__class__ = _TrainModule
