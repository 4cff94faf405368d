"""Owner-only JSON files for keys: read with a permission check, written atomically.

Both key files (:mod:`services.keys.file_store`, :mod:`services.keys.signing_file`) go
through here. A file is created atomically with mode 0600 (a temporary file opened with
``O_CREAT|O_EXCL`` is hard-linked into place, which fails rather than overwrite an existing
file) and updated by writing a temporary file and renaming it over the old one, so a crash
never leaves a half written file. Updates lock the directory. Reading refuses a file that
group or others may access.

``what`` names the file in every error ("key store", "signing key file"); no message
contains file contents.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from services.core.errors import KeyStoreError

FILE_MODE: Final = 0o600
MAX_FILE_BYTES: Final = 1 << 20  # a key file is a few KiB; anything bigger is not ours


def read_json(path: Path, what: str, create_hint: str) -> Any:
    """The JSON document in ``path``, after checking it is a small regular file only its
    owner may access; ``create_hint`` says how to make a missing one."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise KeyStoreError(f"{what} {path} does not exist; {create_hint}") from None
    except PermissionError:
        raise KeyStoreError(
            f"cannot read {what} {path}: permission denied; run Schakel as the file's owner"
        ) from None
    except OSError as exc:
        raise KeyStoreError(f"cannot open {what} {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyStoreError(f"{what} {path} is not a regular file")
        if info.st_mode & 0o077:
            raise KeyStoreError(
                f"{what} {path} is accessible to group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); run `chmod 600 {path}`"
            )
        if info.st_size > MAX_FILE_BYTES:
            raise KeyStoreError(f"{what} {path} is too large to be a Schakel key file")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            content = handle.read(MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    try:
        return json.loads(content.decode("utf-8"))
    except UnicodeDecodeError:
        raise KeyStoreError(
            f"{what} {path} is malformed: it is not UTF-8 text; restore it from a backup"
        ) from None
    except json.JSONDecodeError as exc:
        raise KeyStoreError(
            f"{what} {path} is malformed: invalid JSON at line {exc.lineno}, column "
            f"{exc.colno}; restore it from a backup"
        ) from None


def encode(document: Any) -> bytes:
    """``document`` as the indented JSON text key files hold."""
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def _temp_file(path: Path, content: bytes) -> Path:
    """Write ``content`` to a fresh owner-only file next to ``path``, flushed to disk."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # exact mode, whatever the umask
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        temp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return temp


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_directory(path: Path, what: str) -> None:
    """Create the directory of ``path`` (mode 0700) if it is missing."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise KeyStoreError(
            f"cannot create the directory for {what} {path}: {exc.strerror}"
        ) from None


def write_new(path: Path, content: bytes, what: str, exists_hint: str) -> None:
    """Create ``path`` with ``content`` atomically; never overwrite an existing file
    (``exists_hint`` says what to do instead)."""
    try:
        temp = _temp_file(path, content)
    except OSError as exc:
        raise KeyStoreError(f"cannot write {what} {path}: {exc.strerror}") from None
    try:
        os.link(temp, path)  # atomic, and fails if path exists
    except FileExistsError:
        raise KeyStoreError(
            f"{what} {path} already exists; refusing to overwrite it ({exists_hint})"
        ) from None
    except OSError as exc:
        raise KeyStoreError(f"cannot create {what} {path}: {exc.strerror}") from None
    finally:
        temp.unlink(missing_ok=True)
    _sync_directory(path.parent)


def replace(path: Path, content: bytes, what: str) -> None:
    """Replace ``path`` with ``content`` atomically (write a temporary file, rename it)."""
    try:
        temp = _temp_file(path, content)
    except OSError as exc:
        raise KeyStoreError(f"cannot write {what} {path}: {exc.strerror}") from None
    try:
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise KeyStoreError(f"cannot update {what} {path}: {exc.strerror}") from None
    _sync_directory(path.parent)


@contextlib.contextmanager
def locked(path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on the directory of ``path`` while updating it.

    The directory is locked, not the file, because an update renames a new file into place.
    """
    try:
        fd = os.open(path.parent, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise KeyStoreError(f"cannot open the directory of {what} {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
