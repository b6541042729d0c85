"""The filesystem model registry: immutable numbered versions, atomic aliases, sha256 checks.

Layout (the same as TF Serving and Triton, with MLflow-style aliases)::

    <root>/<name>/<version>/model.onnx      immutable once written; versions are 1, 2, 3 ...
    <root>/<name>/<version>/model.json      the version card
    <root>/<name>/aliases.json              {"production": 3, "staging": 4}
    <root>/<name>/alias_history.json        {"production": [1, 2]}: earlier targets, oldest first
    <root>/<name>/.lock                     fcntl lock serialising registrations and alias changes
    <root>/<name>/.tmp-*                    registrations in progress (or killed): never visible

Also the command line: ``python -m service.registry --help``.
"""

import argparse
import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from service.errors import (
    AliasNotFound,
    BadRequest,
    FashionServeError,
    IntegrityError,
    InvalidName,
    ModelNotFound,
    NoAliasHistory,
    RegistryError,
    VersionNotFound,
)

NAME_RE = r"[a-z0-9][a-z0-9._-]{0,63}"
DEFAULT_ALIAS = "production"
MODEL_FILE = "model.onnx"
CARD_FILE = "model.json"
ALIASES_FILE = "aliases.json"
HISTORY_FILE = "alias_history.json"
LOCK_FILE = ".lock"
TEMP_PREFIX = ".tmp-"
CHUNK_SIZE = 1 << 20

_NAME = re.compile(NAME_RE)
# Only canonical decimal numbers are versions, so "01" or "-1" can never alias a real folder.
_VERSION = re.compile(r"[1-9][0-9]*")


def validate_name(name: str, what: str = "model") -> str:
    """Return ``name`` if it is a valid model/alias/file name, else raise InvalidName."""
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise InvalidName(
            f"invalid {what} name {name!r:.80}: use 1 to 64 characters from a-z, 0-9, '.', '_',"
            " '-', starting with a letter or digit"
        )
    return name


def _is_version(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_version(version: object) -> int:
    if not _is_version(version):
        raise BadRequest(f"invalid version {version!r:.80}: versions are positive integers")
    return version


def _dump(data: object) -> str:
    """The one JSON style of the registry's files: sorted keys, indented, trailing newline."""
    return json.dumps(data, sort_keys=True, indent=2, allow_nan=False) + "\n"


def _read_json(path: Path) -> object:
    """Parse a JSON file; None if it does not exist; RegistryError if unreadable or corrupt."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RegistryError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:  # both JSONDecodeError and UnicodeDecodeError
        raise RegistryError(f"corrupt JSON in {path}: {exc}") from exc


def _fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_new(path: Path, text: str) -> None:
    with open(path, "x", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())


def _write_json_atomic(path: Path, data: object) -> None:
    """Replace ``path`` so that readers see either the old or the new content, never a mix."""
    temp = path.with_name(f"{TEMP_PREFIX}{secrets.token_hex(8)}-{path.name}")
    try:
        _write_new(temp, _dump(data))
        os.replace(temp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise RegistryError(f"cannot write {path}: {exc.strerror}") from exc


def _copy(source: Path, target: Path) -> None:
    # Streamed by hand rather than shutil.copyfile: we want the fsync, and any readable source.
    with open(source, "rb") as src, open(target, "xb") as dst:
        while chunk := src.read(CHUNK_SIZE):
            dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


class Registry:
    """A model registry rooted at a folder; every method re-reads the disk (no caching)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    # -- reading ---------------------------------------------------------------------------------

    def models(self) -> list[str]:
        """Names of the models that have at least one version, sorted."""
        self._require_root()
        try:
            entries = list(os.scandir(self.root))
        except OSError as exc:
            raise RegistryError(f"cannot list {self.root}: {exc.strerror}") from exc
        return sorted(
            entry.name
            for entry in entries
            if _NAME.fullmatch(entry.name) and self._scan_versions(Path(entry.path))
        )

    def versions(self, name: str) -> list[int]:
        """The versions of a model, ascending; ModelNotFound if it has none."""
        model_dir = self._model_dir(name)
        self._require_root()
        found = self._scan_versions(model_dir)
        if not found:
            raise ModelNotFound(f"no model named {name!r} in {self.root}")
        return found

    def aliases(self, name: str) -> dict[str, int]:
        """The model's aliases and the versions they point at ({} if none)."""
        self.versions(name)
        return self._read_mapping(self._model_dir(name) / ALIASES_FILE, _is_version)

    def alias_history(self, name: str) -> dict[str, list[int]]:
        """Each alias's earlier targets, oldest first: what rollback walks back through."""
        self.versions(name)
        return self._read_mapping(
            self._model_dir(name) / HISTORY_FILE,
            lambda value: isinstance(value, list) and all(map(_is_version, value)),
        )

    def resolve(self, name: str, version: int | None = None, alias: str | None = None) -> int:
        """The version to serve: the one given, or an alias's target ("production" by default)."""
        if version is not None and alias is not None:
            raise BadRequest("give a version or an alias, not both")
        if version is not None:
            self._require_version(name, version)
            return version
        alias = validate_name(DEFAULT_ALIAS if alias is None else alias, "alias")
        target = self.aliases(name).get(alias)
        if target is None:
            raise AliasNotFound(f"model {name!r} has no alias {alias!r}")
        if target not in self.versions(name):
            raise VersionNotFound(
                f"alias {alias!r} of model {name!r} points at version {target},"
                " which does not exist"
            )
        return target

    def card(self, name: str, version: int) -> dict:
        """The version card (model.json) of one version."""
        path = self._require_version(name, version) / CARD_FILE
        card = _read_json(path)
        if card is None:
            raise RegistryError(f"{path} is missing")
        if not isinstance(card, dict):
            raise RegistryError(f"{path} is not a JSON object")
        return card

    def version_dir(self, name: str, version: int) -> Path:
        """Where a version lives (no I/O: it need not exist)."""
        return self._model_dir(name) / str(_check_version(version))

    def model_path(self, name: str, version: int) -> Path:
        """Where a version's model.onnx lives (no I/O: it need not exist)."""
        return self.version_dir(name, version) / MODEL_FILE

    def aliases_stamp(self, name: str) -> tuple[int, int, int] | None:
        """A cheap change detector of aliases.json for hot reload: None while there is none."""
        try:
            stat = (self._model_dir(name) / ALIASES_FILE).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        # os.replace gives every new aliases.json a new inode, so even same-size,
        # same-timestamp rewrites are seen.
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    # -- writing ---------------------------------------------------------------------------------

    def register(
        self,
        name: str,
        onnx_file: str | os.PathLike,
        card: dict,
        extra_files: dict[str, str | os.PathLike] | None = None,
    ) -> int:
        """Add the next version of a model, atomically, and return its number.

        The card is stored as model.json with "name", "version", "sha256" (of model.onnx) and,
        unless given, "created_at" (ISO-8601 UTC) filled in. ``extra_files`` maps file names in the
        version folder (e.g. "training.png") to the files to copy there.
        """
        validate_name(name)
        sources = {MODEL_FILE: Path(onnx_file)}
        for file_name, source in (extra_files or {}).items():
            validate_name(file_name, "extra file")
            if file_name in (MODEL_FILE, CARD_FILE):
                raise BadRequest(f"extra file name {file_name!r} is reserved by the registry")
            sources[file_name] = Path(source)
        for source in sources.values():
            if not source.exists() or source.is_dir():
                raise BadRequest(f"cannot register {source}: no such file")
        if not isinstance(card, dict):
            raise BadRequest(f"the card must be a dict, not {type(card).__name__}")
        try:
            _dump(card)
        except (TypeError, ValueError) as exc:
            raise BadRequest(f"the card is not JSON-serializable: {exc}") from exc
        self._require_root()
        try:
            return self._register(name, sources, card)
        except OSError as exc:
            raise RegistryError(f"cannot register {name!r} in {self.root}: {exc}") from exc

    def set_alias(self, name: str, alias: str, version: int) -> int | None:
        """Point an alias at a version; return its previous target (None if it is new)."""
        validate_name(alias, "alias")
        self._require_version(name, version)
        model_dir = self._model_dir(name)
        with self._locked(name):
            aliases = self.aliases(name)
            previous = aliases.get(alias)
            if previous == version:
                return previous
            if previous is not None:
                history = self.alias_history(name)
                history.setdefault(alias, []).append(previous)
                # History first: a crash in between leaves only a duplicate of the current target
                # at its end, which rollback skips.
                _write_json_atomic(model_dir / HISTORY_FILE, history)
            aliases[alias] = version
            _write_json_atomic(model_dir / ALIASES_FILE, aliases)
        return previous

    def append_to_card(self, name: str, version: int, key: str, entry: dict) -> None:
        """Append entry to the list card[key] of a version (e.g. a promotion gate's verdict).

        The card is replaced atomically; model.onnx and the fields the registry wrote (name,
        version, sha256, created_at) never change, so the version stays what it was.
        """
        if key in ("name", "version", "sha256", "created_at"):
            raise BadRequest(f"card field {key!r} is written by the registry only")
        try:
            _dump(entry)
        except (TypeError, ValueError) as exc:
            raise BadRequest(f"the card entry is not JSON-serializable: {exc}") from exc
        path = self._require_version(name, version) / CARD_FILE
        with self._locked(name):
            card = self.card(name, version)
            entries = card.setdefault(key, [])
            if not isinstance(entries, list):
                raise RegistryError(f"{path}: field {key!r} is not a list")
            entries.append(entry)
            _write_json_atomic(path, card)

    def rollback(self, name: str, alias: str) -> int:
        """Point an alias back at its previous target and return it; each call goes further back."""
        validate_name(alias, "alias")
        versions = self.versions(name)
        model_dir = self._model_dir(name)
        with self._locked(name):
            aliases = self.aliases(name)
            if alias not in aliases:
                raise AliasNotFound(f"model {name!r} has no alias {alias!r}")
            history = self.alias_history(name)
            earlier = history.get(alias, [])
            while earlier and earlier[-1] == aliases[alias]:
                earlier.pop()
            if not earlier:
                raise NoAliasHistory(
                    f"alias {alias!r} of model {name!r} never pointed at another version:"
                    " nothing to roll back to"
                )
            target = earlier.pop()
            if target not in versions:
                raise VersionNotFound(
                    f"cannot roll back alias {alias!r} of model {name!r}: its previous target,"
                    f" version {target}, no longer exists"
                )
            aliases[alias] = target
            if earlier:
                history[alias] = earlier
            else:
                del history[alias]
            # Alias first: a crash in between leaves the new target at the end of the history,
            # which the next rollback skips.
            _write_json_atomic(model_dir / ALIASES_FILE, aliases)
            _write_json_atomic(model_dir / HISTORY_FILE, history)
        return target

    # -- checking --------------------------------------------------------------------------------

    def verify_version(self, name: str, version: int) -> None:
        """Check that model.onnx still has the sha256 its card records; IntegrityError if not."""
        self.read_verified(name, version)

    def read_verified(self, name: str, version: int) -> bytes:
        """model.onnx's bytes, read once and checked against the card's sha256 (IntegrityError).

        Loading from these very bytes leaves no window between the check and the load.
        """
        directory = self._require_version(name, version)
        label = f"{name} version {version}"
        try:
            card = self.card(name, version)
        except RegistryError as exc:
            raise IntegrityError(f"{label}: {exc}") from exc
        if card.get("name") != name or card.get("version") != version:
            described = f"{card.get('name')!r} version {card.get('version')!r}"
            raise IntegrityError(f"{label}: model.json describes {described}")
        expected = card.get("sha256")
        if not isinstance(expected, str):
            raise IntegrityError(f"{label}: model.json records no sha256")
        try:
            data = (directory / MODEL_FILE).read_bytes()
        except FileNotFoundError as exc:
            raise IntegrityError(f"{label}: {MODEL_FILE} is missing") from exc
        except OSError as exc:
            raise IntegrityError(f"{label}: cannot read {MODEL_FILE}: {exc.strerror}") from exc
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise IntegrityError(
                f"{label}: {MODEL_FILE} has sha256 {actual}, but its card records {expected}"
            )
        return data

    def verify(self, name: str | None = None) -> list[str]:
        """Check every version of one model (or all) and their aliases; [] means all is well."""
        problems = []
        for model in self.models() if name is None else [name]:
            versions = self.versions(model)
            for version in versions:
                try:
                    self.verify_version(model, version)
                except IntegrityError as exc:
                    problems.append(str(exc))
            try:
                aliases = self.aliases(model)
                self.alias_history(model)
            except RegistryError as exc:
                problems.append(str(exc))
                continue
            problems.extend(
                f"{model}: alias {alias!r} points at version {target}, which does not exist"
                for alias, target in sorted(aliases.items())
                if target not in versions
            )
        return problems

    # -- internals -------------------------------------------------------------------------------

    def _model_dir(self, name: str) -> Path:
        return self.root / validate_name(name)

    def _require_root(self) -> None:
        if not self.root.is_dir():
            raise RegistryError(f"model registry folder {self.root} does not exist")

    def _require_version(self, name: str, version: int) -> Path:
        directory = self.version_dir(name, version)
        if not directory.is_dir():
            self.versions(name)  # an unknown model (or a missing root) is the better message
            raise VersionNotFound(f"model {name!r} has no version {version}")
        return directory

    @staticmethod
    def _scan_versions(model_dir: Path) -> list[int]:
        try:
            entries = list(os.scandir(model_dir))
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise RegistryError(f"cannot list {model_dir}: {exc.strerror}") from exc
        return sorted(
            int(entry.name)
            for entry in entries
            if _VERSION.fullmatch(entry.name) and entry.is_dir()
        )

    @staticmethod
    def _read_mapping(path: Path, valid_value: Callable[[object], bool]) -> dict:
        data = _read_json(path)
        if data is None:
            return {}
        if not isinstance(data, dict) or not all(
            _NAME.fullmatch(key) and valid_value(value) for key, value in data.items()
        ):
            raise RegistryError(f"{path} does not map alias names to versions")
        return data

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        path = self._model_dir(name) / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RegistryError(f"cannot lock {path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock, as does the death of the process

    def _register(self, name: str, sources: dict[str, Path], card: dict) -> int:
        model_dir = self._model_dir(name)
        try:
            model_dir.mkdir()
        except FileExistsError:
            pass
        else:
            _fsync_dir(self.root)
        staging = model_dir / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        staging.mkdir()
        try:
            # The slow part (copying) happens outside the lock; only numbering happens inside.
            for file_name, source in sources.items():
                _copy(source, staging / file_name)
            record = {
                "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                **card,
                "name": name,
                "sha256": _sha256(staging / MODEL_FILE),
            }
            with self._locked(name):
                version = max(self._scan_versions(model_dir), default=0) + 1
                record["version"] = version
                _write_new(staging / CARD_FILE, _dump(record))
                _fsync_dir(staging)
                staging.rename(model_dir / str(version))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _fsync_dir(model_dir)
        return version


# -- command line --------------------------------------------------------------------------------


def _parse_version(text: str) -> int:
    if _VERSION.fullmatch(text) is None:
        raise BadRequest(
            f"invalid version {text!r:.80}: versions are positive integers (1, 2, 3 ...)"
        )
    return int(text)


def _format_aliases(aliases: dict[str, int]) -> str:
    return ", ".join(f"{alias} -> {target}" for alias, target in sorted(aliases.items())) or "none"


def _cmd_list(registry: Registry, args: argparse.Namespace) -> int:
    models = registry.models()
    if not models:
        print(f"no models in {registry.root}")
    for name in models:
        versions = ", ".join(map(str, registry.versions(name)))
        print(f"{name}  versions: {versions}  aliases: {_format_aliases(registry.aliases(name))}")
    return 0


def _cmd_show(registry: Registry, args: argparse.Namespace) -> int:
    name, has_version, version = args.target.partition(":")
    if has_version:
        print(_dump(registry.card(name, _parse_version(version))), end="")
        return 0
    print(f"model: {name}")
    print(f"versions: {', '.join(map(str, registry.versions(name)))}")
    print(f"aliases: {_format_aliases(registry.aliases(name))}")
    for alias, earlier in sorted(registry.alias_history(name).items()):
        print(f"earlier targets of {alias}: {', '.join(map(str, earlier))}")
    return 0


def _cmd_promote(registry: Registry, args: argparse.Namespace) -> int:
    version = _parse_version(args.version)
    previous = registry.set_alias(args.name, args.alias, version)
    if previous is None:
        change = "new alias"
    elif previous == version:
        change = "unchanged"
    else:
        change = f"was {previous}"
    print(f"{args.name}: {args.alias} -> {version} ({change})")
    return 0


def _cmd_rollback(registry: Registry, args: argparse.Namespace) -> int:
    target = registry.rollback(args.name, args.alias)
    print(f"{args.name}: {args.alias} -> {target} (rolled back)")
    return 0


def _cmd_verify(registry: Registry, args: argparse.Namespace) -> int:
    failed = False
    for name in registry.models() if args.name is None else [args.name]:
        problems = registry.verify(name)
        for problem in problems:
            print(f"FAILED {problem}")
        if not problems:
            print(f"OK {name}: {len(registry.versions(name))} version(s) match their cards")
        failed = failed or bool(problems)
    return 1 if failed else 0


_COMMANDS: dict[str, Callable[[Registry, argparse.Namespace], int]] = {
    "list": _cmd_list,
    "show": _cmd_show,
    "promote": _cmd_promote,
    "rollback": _cmd_rollback,
    "verify": _cmd_verify,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service.registry", description="Inspect and manage the model registry."
    )
    parser.add_argument(
        "--root",
        default=os.environ.get("FASHION_MODEL_DIR") or "models",
        help="the registry folder (default: $FASHION_MODEL_DIR, else ./models)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("list", help="list the models with their versions and aliases")
    show = commands.add_parser("show", help="a model's versions and aliases, or a version's card")
    show.add_argument("target", metavar="NAME[:V]")
    promote = commands.add_parser("promote", help="point an alias at a version")
    promote.add_argument("name", metavar="NAME")
    promote.add_argument("version", metavar="V")
    promote.add_argument("--alias", required=True, metavar="A")
    rollback = commands.add_parser("rollback", help="point an alias back at its previous target")
    rollback.add_argument("name", metavar="NAME")
    rollback.add_argument("--alias", required=True, metavar="A")
    verify = commands.add_parser("verify", help="check every model.onnx against its card's sha256")
    verify.add_argument("name", nargs="?", metavar="NAME")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the registry command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](Registry(args.root), args)
    except (InvalidName, BadRequest) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FashionServeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
