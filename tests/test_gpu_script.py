"""bench/gpu.sh rehearsed on the CPU (DEVICE=cpu QUICK=1, tiny sizes): the script runs its checks end
to end and writes their JSON, the learning run's and the compiled step's profile included, and the
summary table. Only the checks the new parts need run here (CHECKS), to keep the test short; the
whole rehearsal is `DEVICE=cpu QUICK=1 bash bench/gpu.sh`."""
import json
import os
import subprocess
import sys

import pytest
from helpers import REPO


def _fashion_mnist_available() -> bool:
    from simple_ijepa.data import build_dataset

    try:
        build_dataset("fashion_mnist", os.path.join(REPO, "data"), "test")
        return True
    except Exception:
        return False


@pytest.mark.slow
def test_gpu_sh_rehearsal_writes_learning_run_and_profile(tmp_path):
    if not _fashion_mnist_available():
        pytest.skip("Fashion-MNIST is not installed (the learning run trains on it)")
    out = tmp_path / "out"
    env = dict(os.environ, DEVICE="cpu", QUICK="1", OUT=str(out), WORK=str(tmp_path / "work"), PYTHON=sys.executable,
               CHECKS="eager learning profile", LEARN_S="2")
    run = subprocess.run(["bash", os.path.join(REPO, "bench", "gpu.sh")], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=400)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "FAILED" not in run.stdout, run.stdout[-3000:]

    learning = json.loads((out / "learning_run.json").read_text())
    assert "error" not in learning, learning
    assert "throughput_eager.json" in learning["how"]  # the step count comes from the rate measured just before
    assert 1 <= learning["max_steps"] <= 30 and learning["exit_code"] == 0 and not learning["stopped_early"]
    assert set(learning["probes"]) == {"pretrained", "random init", "raw pixels"}
    for r in learning["probes"].values():
        assert 0.0 <= r["probe_acc"] <= 1.0 and 0.0 <= r["knn_acc"] <= 1.0
    assert isinstance(learning["target_met"], bool)

    profile = json.loads((out / "profile_budget_compiled.json").read_text())
    assert profile["families"] and profile["top"] and profile["wall_ms_per_step"] > 0
    assert abs(sum(f["share_of_device_time"] for f in profile["families"]) - 1.0) < 1e-6

    assert json.loads((out / "correctness.json").read_text()) == {"skipped": "not in CHECKS"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["learning_run"] == learning and summary["profile_budget_compiled"] == profile
    rows = {r["check"]: r for r in summary["rows"]}
    assert rows["learning run (report): teacher linear probe > raw pixels"]["pass"] == learning["target_met"]
    assert rows["correctness: bf16 vs CPU fp32 loss, max rel. diff <= 1%"]["pass"] is None  # skipped, not failed
    assert "SKIP  correctness" in run.stdout and (out / "gpu.log").is_file()
