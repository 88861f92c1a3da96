"""Reading a manifest file without trusting what the path turns out to be.

A path in a manifest directory can be anything: a FIFO named ``x.yaml`` (opening it for
reading blocks until a writer comes, so ``validate`` would hang), a symbolic link to
``/dev/zero`` or ``/dev/urandom`` (reading never ends, then ``MemoryError``), a socket, or
a regular file of many gigabytes. So a manifest must resolve to a regular file no larger
than a limit, checked by ``stat`` before anything is opened, and checked again with
``fstat`` on the descriptor actually opened (without blocking), in case the path was
replaced in between; reading stops one byte past the limit whatever ``stat`` said.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping

LIMIT_ENV = "RECONCILER_MAX_MANIFEST_BYTES"
DEFAULT_MAX_MANIFEST_BYTES = 64 * 1024 * 1024  # far above any real organization's manifests
_CHUNK = 1 << 20


class ManifestFileError(Exception):
    """A path that is not a readable manifest; the message is the whole complaint."""


def max_manifest_bytes(environ: Mapping[str, str]) -> tuple[int, str | None]:
    """The size limit from ``RECONCILER_MAX_MANIFEST_BYTES`` (default 64 MiB), and a message
    when the variable is set to something that is not a positive whole number of bytes (the
    default applies then, so the other problems are still reported)."""
    raw = environ.get(LIMIT_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_MAX_MANIFEST_BYTES, None
    try:
        value = int(raw.strip().replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        return DEFAULT_MAX_MANIFEST_BYTES, (
            f"{LIMIT_ENV} must be a whole number of bytes greater than 0 (got {raw.strip()!r})"
        )
    return value, None


def _what(mode: int) -> str | None:
    """What a non-regular file is, in words, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _size_message(what: str) -> str:
    return f"{what}; split it into several files, or raise the limit with {LIMIT_ENV}"


def _check(st: os.stat_result, limit: int) -> None:
    what = _what(st.st_mode)
    if what is not None:
        raise ManifestFileError(f"not a regular file but {what}; a manifest must be a regular file (not read)")
    if st.st_size > limit:
        raise ManifestFileError(_size_message(
            f"file is larger than the manifest size limit ({st.st_size} bytes, limit {limit})"
        ))


def check_manifest_path(path: str, limit: int) -> None:
    """Refuse, without opening it, a path that does not resolve to a regular file within
    ``limit`` bytes (symbolic links are followed: where they lead is what is read)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ManifestFileError("no such file or directory (or a broken symbolic link)") from None
    except OSError as exc:
        raise ManifestFileError(f"cannot read file: {exc.strerror or exc}") from None
    _check(st, limit)


def read_manifest_bytes(path: str, limit: int) -> bytes:
    """The bytes of a manifest, or :class:`ManifestFileError`. Never blocks on a FIFO and
    never reads more than ``limit + 1`` bytes, even if the path changes under us."""
    check_manifest_path(path, limit)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ManifestFileError(f"cannot read file: {exc.strerror or exc}") from None
    try:
        _check(os.fstat(fd), limit)  # the file opened may not be the one stat looked at
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except BlockingIOError:
        raise ManifestFileError("cannot read file: it is not ready to read (not a regular file?)") from None
    except OSError as exc:
        raise ManifestFileError(f"cannot read file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if total > limit:
        raise ManifestFileError(_size_message(
            f"file grew past the manifest size limit ({limit} bytes) while it was read"
        ))
    return b"".join(chunks)
