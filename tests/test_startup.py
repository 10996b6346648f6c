"""Start-up as the README tells it: a virtual environment and the CPU wheel before anything is installed,
`make run` installing once (then only when a requirements file changes), a server that watches no files,
how to stop it and choose its port."""
from __future__ import annotations

import os
import shutil
import subprocess
import tomllib

import pytest
from conftest import ROOT

README = (ROOT / "README.md").read_text()
QUICK = README[README.index("## Quick start"):README.index("## The pages")]


def test_the_quick_start_puts_the_venv_and_the_cpu_wheel_before_make_run() -> None:
    venv, wheel = QUICK.index("python3 -m venv .venv"), QUICK.index("download.pytorch.org/whl/cpu")
    run, test = QUICK.index("make run "), QUICK.index("make test ")
    assert venv < wheel < run < test
    assert "Ctrl+C" in QUICK and "make run PORT=8502" in QUICK


def test_the_server_watches_no_files() -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["fileWatcherType"] == "none"


def _make(folder, *args: str) -> str:
    return subprocess.run(["make", "-n", *args], cwd=folder, capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_installs_once_then_only_when_requirements_change(tmp_path) -> None:
    for name in ("Makefile", "requirements.txt", "requirements-dev.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    first = _make(tmp_path, "run")
    assert "pip install" in first and "streamlit run app.py --server.port 8501" in first
    # Do what the recipe's last line does (the stamp), without installing anything.
    stamp = next(w for line in first.splitlines() if "touch" in line for w in line.split() if w.endswith(".stamp"))
    (tmp_path / stamp).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / stamp).touch()
    again = _make(tmp_path, "run", "PORT=8502")
    assert "pip install" not in again and "--server.port 8502" in again
    later = (tmp_path / stamp).stat().st_mtime + 5
    os.utime(tmp_path / "requirements.txt", (later, later))  # an edited requirements file
    assert "pip install" in _make(tmp_path, "run")
