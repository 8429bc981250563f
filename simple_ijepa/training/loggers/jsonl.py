"""metrics.jsonl: one JSON line per log step in save_model_dir (always on; read by the plots and benches)."""
from __future__ import annotations

import json
import os

from ...utils.atomic import write_text_atomic

METRICS_FILE = "metrics.jsonl"


class JSONLLogger:
    name = "metrics.jsonl writer"

    @classmethod
    def wanted(cls, cfg) -> bool:
        return True

    def __init__(self, cfg, save_dir: str):
        self.path = os.path.join(save_dir, METRICS_FILE)

    def log(self, metrics: dict, step: int) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(metrics) + "\n")

    def close(self, error: BaseException | None = None) -> None:
        pass


def step_of(line: str) -> int | None:
    """A metrics line's step; None for a line that is not a JSON object with a step (a write cut off
    by a crash, a line edited by hand): never fatal, such a line is dropped where the file is cut."""
    try:
        row = json.loads(line)
        return int(row["step"]) if isinstance(row, dict) and "step" in row else None
    except (ValueError, TypeError):
        return None


def cut_metrics(path: str, step: int) -> None:
    """Keep only metrics.jsonl lines up to `step` (the step a run starts from), written atomically,
    so that a resumed run's curve has no steps twice."""
    if not os.path.isfile(path):
        return
    with open(path) as f:
        lines = f.readlines()
    kept = [line for line in lines if (s := step_of(line)) is not None and s <= step]
    if len(kept) != len(lines):
        write_text_atomic(path, "".join(kept))
