"""Packaging (issue 14 item 6): ``python -m build`` makes a wheel of ``m3ter-reconciler``
that installs in a clean virtual environment and runs the example organization there,
with the command and the import name both ``reconciler``; the version comes from one
place. The venv installs the dependencies from the package index, as a user's would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from reconciler import __version__
from tests.conftest import EXAMPLES, REPO, run_cli

DISTRIBUTION = "m3ter-reconciler"


def _clean_env() -> dict[str, str]:
    """No PYTHONPATH (it would import the source tree instead of the wheel), no virtualenv."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(args: list[str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_metadata_names_the_distribution_and_reads_the_version_from_one_place() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    meta = project["project"]
    assert meta["name"] == DISTRIBUTION
    assert meta["dynamic"] == ["version"] and "version" not in meta
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "reconciler.__version__"}
    assert meta["scripts"] == {"reconciler": "reconciler.cli:main"}
    assert meta["urls"] and meta["classifiers"]
    names = {dep.split(">")[0].split("=")[0].split("[")[0].strip().lower() for dep in meta["dependencies"]}
    assert not names & {"deepdiff", "tenacity"}  # declared but unused: removed
    assert any(dep.startswith(f"{DISTRIBUTION}[emulator]") for dep in meta["optional-dependencies"]["dev"])


def test_version_option() -> None:
    result = run_cli("--version")
    assert result.code == 0 and result.stdout.strip() == f"reconciler, version {__version__}"


def test_shell_completion_script(tmp_path: Path) -> None:
    """The README's completion instructions work: click prints a bash completion script."""
    env = {**_clean_env(), "_RECONCILER_COMPLETE": "bash_source", "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "reconciler"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "_RECONCILER_COMPLETE" in result.stdout and "complete " in result.stdout


def test_wheel_installs_and_runs_the_example_in_a_clean_venv(tmp_path: Path) -> None:
    # Build from a copy, so the build's egg-info and build/ never land in the source tree.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "reconciler", src / "reconciler", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"), str(src)], tmp_path)
    [wheel] = list((tmp_path / "dist").glob("*.whl"))
    assert wheel.name == f"m3ter_reconciler-{__version__}-py3-none-any.whl"

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    _run([str(bindir / "python"), "-m", "pip", "install", "--quiet", str(wheel)], tmp_path)

    work = tmp_path / "work"  # not the repository: nothing can be imported from the checkout
    work.mkdir()
    where = _run([str(bindir / "python"), "-c", "import reconciler; print(reconciler.__file__)"], work)
    assert str(venv) in where.stdout
    command = str(bindir / "reconciler")
    assert _run([command, "--version"], work).stdout.strip() == f"reconciler, version {__version__}"
    _run([command, "validate", str(EXAMPLES)], work)
    backend = f"local:{work / 'org.sqlite'}"
    planned = _run([command, "plan", str(EXAMPLES), "--backend", backend], work)
    assert "to create" in planned.stdout
    _run([command, "apply", str(EXAMPLES), "--backend", backend, "--auto-approve"], work)
    again = _run([command, "plan", str(EXAMPLES), "--backend", backend, "--detailed-exitcode"], work)
    assert "No changes." in again.stdout
