"""Small text files written atomically: run.json, config.yaml, env.json, `--output` JSON, the wandb run id
and a resumed run's cut metrics.jsonl.

`checkpoints.atomic_save` is the torch twin (with fsync, for files worth a training run).
"""
from __future__ import annotations

import os


def write_text_atomic(path: str, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path`.

    A reader (or a crash) sees the old file or the new one, never half of one; a failed write raises
    OSError and leaves no temporary file behind.
    """
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
