"""Adding a version: its arguments checked, its files staged, then numbered under the lock."""

import datetime
import os
import shutil
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from service.contract import validate_name
from service.errors import BadRequest

from . import _files
from ._layout import CARD_FILE, MODEL_FILE, scan_versions


def checked_arguments(
    onnx_file: str | os.PathLike[str],
    card: dict[str, Any],
    extra_files: dict[str, str | os.PathLike[str]] | None,
) -> dict[str, Path]:
    """The files a new version copies, by their name in its folder; BadRequest if any is bad."""
    found = {MODEL_FILE: Path(onnx_file)}
    for file_name, source in (extra_files or {}).items():
        validate_name(file_name, "extra file")
        if file_name in (MODEL_FILE, CARD_FILE):
            raise BadRequest(f"extra file name {file_name!r} is reserved by the registry")
        found[file_name] = Path(source)
    for source in found.values():
        if not source.exists() or source.is_dir():
            raise BadRequest(f"cannot register {source}: no such file")
    if not isinstance(card, dict):
        raise BadRequest(f"the card must be a dict, not {type(card).__name__}")
    try:
        _files.dump(card)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"the card is not JSON-serializable: {exc}") from exc
    return found


def write_version(
    model_dir: Path,
    sources: dict[str, Path],
    card: dict[str, Any],
    lock: AbstractContextManager[None],
) -> int:
    """Stage the files beside the versions, then number and rename them holding ``lock``."""
    try:
        model_dir.mkdir()
    except FileExistsError:
        pass
    else:
        _files.fsync_dir(model_dir.parent)
    staging = model_dir / _files.temp_name()
    staging.mkdir()
    try:
        # The slow part (copying) happens outside the lock; only numbering happens inside.
        for file_name, source in sources.items():
            _files.copy(source, staging / file_name)
        record = {
            "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            **card,
            "name": model_dir.name,
            "sha256": _files.sha256_file(staging / MODEL_FILE),
        }
        with lock:
            version = max(scan_versions(model_dir), default=0) + 1
            record["version"] = version
            _files.write_new(staging / CARD_FILE, _files.dump(record))
            _files.fsync_dir(staging)
            staging.rename(model_dir / str(version))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _files.fsync_dir(model_dir)
    return version
