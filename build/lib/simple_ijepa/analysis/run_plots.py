"""Plots of a run from its metrics file: `loss.png`, `probe.png` and `collapse.png` in the run directory.

    python -m simple_ijepa.analysis.run_plots ./models        # any logging.save_model_dir
"""
from __future__ import annotations

import json
import os


def read_metrics(run_dir: str) -> list[dict]:
    """The run's metrics.jsonl as a list of dicts (one per log step); a line that does not parse (a
    write cut off by a crash) is skipped."""
    rows = []
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows


def plot_run(run_dir: str) -> list[str]:
    """Write loss.png, collapse.png (teacher collapse monitors) and probe.png (when the run probed)
    into run_dir; return the paths written."""
    from matplotlib.figure import Figure  # an Agg canvas; pyplot and the global backend stay untouched

    rows = read_metrics(run_dir)
    written = []
    panels = [("loss", "loss.png", "training loss", ("loss", "loss_pred", "gate_penalty", "sigreg")),
              ("collapse", "collapse.png", "teacher feature spread / effective rank",
               ("teacher_pooled_std", "teacher_token_std", "teacher_rankme")),
              ("probe", "probe.png", "accuracy (linear probe / k-NN)", None)]
    for prefix, name, ylabel, wanted in panels:
        if wanted is None:
            keys = sorted({k for r in rows for k in r if k.startswith(("probe_", "knn_"))})
        else:
            keys = [k for k in wanted if any(k in r for r in rows)]
        if not keys:
            continue
        fig = Figure(figsize=(6, 4), dpi=120)
        ax = fig.subplots()
        for k in keys:
            pts = [(r["step"], r[k]) for r in rows if r.get(k) is not None]
            ax.plot(*zip(*pts), marker="o" if prefix == "probe" else None, markersize=3, label=k)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        if prefix != "probe":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = os.path.join(run_dir, name)
        fig.savefig(path)
        written.append(path)
    return written


def main(argv=None) -> list[str]:
    from ..cli import checks
    from ..errors import ConfigError

    parser = checks.parser("python -m simple_ijepa.analysis.run_plots",
                           "Plot loss.png / collapse.png / probe.png from a run's metrics.jsonl.")
    parser.add_argument("run_dir", help="the run's logging.save_model_dir")
    run_dir = parser.parse_args(argv).run_dir
    if not os.path.isfile(os.path.join(run_dir, "metrics.jsonl")):
        raise ConfigError(f"run_dir {run_dir!r} has no metrics.jsonl: give a run's logging.save_model_dir.")
    checks.output_file(os.path.join(run_dir, "loss.png"), "run_dir", overwrite=True)  # the plots go there
    written = plot_run(run_dir)
    for path in written:
        print(path)
    return written


if __name__ == "__main__":
    from ..errors import run_command

    run_command(main)
