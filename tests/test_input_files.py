"""Input files are bounded: a manifest path must resolve to a regular file no larger than
RECONCILER_MAX_MANIFEST_BYTES. A FIFO, a device or an oversized file is refused as
``FILE: error: ...``, exit 1, at once and without being read (a FIFO named ``x.yaml`` used to
hang ``validate``; a symlink to /dev/zero ended in a MemoryError traceback)."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from reconciler.manifest.files import DEFAULT_MAX_MANIFEST_BYTES, ManifestFileError, read_manifest_bytes
from tests.conftest import CliResult, run_cli
from tests.test_e2e_local import write

GOOD = "accounts:\n  - {code: acme, name: Acme, emailAddress: a@x.example}\n"
COMMANDS = ("validate", "plan")


def run_fast(*args: str, env: dict[str, str] | None = None) -> CliResult:
    """Run the CLI and insist it finished quickly: refusing a file must not wait for it."""
    started = time.monotonic()
    result = run_cli(*args, env=env)
    assert time.monotonic() - started < 10, "refusing a manifest took too long"
    assert "Traceback" not in result.output and "MemoryError" not in result.output
    return result


def args_for(command: str, path: Path, backend: str) -> list[str]:
    return [command, str(path)] + (["--backend", backend] if command == "plan" else [])


@pytest.mark.timeout(30)
@pytest.mark.parametrize("command", COMMANDS)
def test_fifo_in_a_manifest_directory_is_refused_without_hanging(
    tmp_path: Path, local_backend: str, command: str
) -> None:
    write(tmp_path, "m/a.yaml", GOOD)
    fifo = tmp_path / "m" / "x.yaml"
    os.mkfifo(fifo)
    result = run_fast(*args_for(command, tmp_path / "m", local_backend))
    assert result.code == 1
    assert f"{fifo}: error: not a regular file but a FIFO (named pipe)" in result.stderr
    assert result.stdout == ""


@pytest.mark.timeout(30)
@pytest.mark.parametrize("command", COMMANDS)
def test_fifo_named_directly_is_refused(tmp_path: Path, local_backend: str, command: str) -> None:
    fifo = tmp_path / "x.yaml"
    os.mkfifo(fifo)
    result = run_fast(*args_for(command, fifo, local_backend))
    assert result.code == 1
    assert f"{fifo}: error: not a regular file but a FIFO" in result.stderr


@pytest.mark.timeout(30)
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
@pytest.mark.parametrize("command", COMMANDS)
def test_symlink_to_a_device_is_refused(tmp_path: Path, local_backend: str, command: str, device: str) -> None:
    write(tmp_path, "m/a.yaml", GOOD)
    link = tmp_path / "m" / "z.yaml"
    link.symlink_to(device)
    result = run_fast(*args_for(command, tmp_path / "m", local_backend))
    assert result.code == 1
    assert f"{link}: error: not a regular file but a character device" in result.stderr


@pytest.mark.timeout(30)
def test_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))
        result = run_fast("validate", str(path))
    assert result.code == 1
    assert f"{path}: error: not a regular file but a socket" in result.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_oversized_file_is_refused_with_the_configured_limit(tmp_path: Path, local_backend: str, command: str) -> None:
    write(tmp_path, "m/a.yaml", GOOD)
    big = write(tmp_path, "m/b.yaml", "# padding\n" * 200)
    env = {"RECONCILER_MAX_MANIFEST_BYTES": "1000"}
    result = run_fast(*args_for(command, tmp_path / "m", local_backend), env=env)
    assert result.code == 1
    assert f"{big}: error: file is larger than the manifest size limit (2000 bytes, limit 1000)" in result.stderr
    assert "RECONCILER_MAX_MANIFEST_BYTES" in result.stderr
    # the same files under the default limit are fine
    assert run_cli(*args_for(command, tmp_path / "m", local_backend)).code == 0


def test_symlink_to_a_regular_file_is_read(tmp_path: Path) -> None:
    target = write(tmp_path, "real/a.yaml", GOOD)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a.yaml").symlink_to(target)
    result = run_cli("validate", str(tmp_path / "m"))
    assert result.code == 0, result.output
    assert "1 object" in result.stderr


def test_invalid_limit_is_an_error_naming_the_variable(tmp_path: Path) -> None:
    write(tmp_path, "m/a.yaml", GOOD)
    result = run_cli("validate", str(tmp_path / "m"), env={"RECONCILER_MAX_MANIFEST_BYTES": "lots"})
    assert result.code == 1
    assert "RECONCILER_MAX_MANIFEST_BYTES must be a whole number of bytes greater than 0 (got 'lots')" in result.stderr


def test_reading_never_goes_past_the_limit(tmp_path: Path) -> None:
    """The last guard: however the file looked to stat, at most limit + 1 bytes are read."""
    path = write(tmp_path, "a.yaml", GOOD)
    assert read_manifest_bytes(str(path), DEFAULT_MAX_MANIFEST_BYTES) == GOOD.encode()
    with pytest.raises(ManifestFileError, match="larger than the manifest size limit"):
        read_manifest_bytes(str(path), 10)
    with pytest.raises(ManifestFileError, match="grew past the manifest size limit"):
        # a file that stat saw small and that turned out bigger when read: /proc files
        # report size 0 to stat and have content
        read_manifest_bytes("/proc/self/status", 10)
