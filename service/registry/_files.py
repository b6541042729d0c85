"""The registry's file primitives: atomic, locked and fsynced writes; JSON reads; sha256."""

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from service.errors import RegistryError

TEMP_PREFIX = ".tmp-"
CHUNK_SIZE = 1 << 20


def temp_name(name: str = "") -> str:
    """A fresh hidden name for work in progress, which readers never mistake for a version."""
    return f"{TEMP_PREFIX}{secrets.token_hex(8)}{'-' if name else ''}{name}"


def dump(data: object) -> str:
    """The one JSON style of the registry's files: sorted keys, indented, trailing newline."""
    return json.dumps(data, sort_keys=True, indent=2, allow_nan=False) + "\n"


def read_json(path: Path, shown: str) -> object:
    """Parse a JSON file; None if it does not exist; RegistryError if unreadable or corrupt.

    Messages name the file as ``shown`` (relative to the registry): they may reach HTTP clients.
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise RegistryError(f"cannot read {shown}: {exc.strerror}") from exc
    except ValueError as exc:  # both JSONDecodeError and UnicodeDecodeError
        raise RegistryError(f"corrupt JSON in {shown}: {exc}") from exc


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_new(path: Path, text: str) -> None:
    """Create ``path`` (it must not exist) with ``text``, flushed to disk."""
    with open(path, "x", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())


def write_json_atomic(path: Path, data: object, shown: str) -> None:
    """Replace ``path`` so that readers see either the old or the new content, never a mix."""
    temp = path.with_name(temp_name(path.name))
    try:
        write_new(temp, dump(data))
        os.replace(temp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise RegistryError(f"cannot write {shown}: {exc.strerror}") from exc


def copy(source: Path, target: Path) -> None:
    """Copy a file to a new ``target``, flushed to disk."""
    # Streamed by hand rather than shutil.copyfile: we want the fsync, and any readable source.
    with open(source, "rb") as src, open(target, "xb") as dst:
        while chunk := src.read(CHUNK_SIZE):
            dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def stamp(path: Path) -> tuple[int, int, int] | None:
    """A cheap change detector of one file (mtime, size, inode); None while it does not exist."""
    try:
        stat = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def sha256_bytes(data: bytes) -> str:
    """The hex sha256 of bytes already read."""
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def locked(path: Path, shown: str) -> Iterator[None]:
    """Hold an exclusive fcntl lock on ``path`` (created if missing) for the block."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RegistryError(f"cannot lock {shown}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock, as does the death of the process
