"""The console scripts of pyproject.toml exist after `pip install -e .` and answer --help."""
import os
import subprocess
import sys

import pytest

BIN = os.path.dirname(sys.executable)


@pytest.mark.parametrize("name,expect", [("ijepa-train", "docs/configuration.md"), ("ijepa-evaluate", "--ckpt_path"),
                                         ("ijepa-gates", "--num_batches"), ("ijepa-demo", "quick demo"),
                                         ("ijepa-export", "--timm"), ("ijepa-visualize", "--out_dir")])
@pytest.mark.slow
def test_console_script_help(name, expect):
    run = subprocess.run([os.path.join(BIN, name), "--help"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and expect in run.stdout, run.stderr


@pytest.mark.slow
def test_console_script_user_error_is_one_line_and_status_2(tmp_path):
    run = subprocess.run([os.path.join(BIN, "ijepa-evaluate"), "--ckpt_path", str(tmp_path / "missing.pth")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.startswith("error: ") and "Traceback" not in run.stderr
