"""Model registry over HTTP: list models, versions and cards; promote and roll back aliases."""

import hmac

from flask import Blueprint, jsonify, request, send_file

from service.errors import BadRequest
from service.registry import MODEL_FILE, validate_name

from .errors import HttpError
from .parsing import core, parse_version

bp = Blueprint("models", __name__, url_prefix="/models")

# The stored files of a version anyone may fetch: the training job's plots. The model itself and
# anything else in the folder stay private.
VERSION_FILES = {"training.png": "image/png", "confusion.png": "image/png"}


@bp.get("")
def list_models():
    """Every model in the registry with its versions and aliases."""
    service = core()
    registry = service.registry
    return jsonify(
        models=[
            {
                "name": name,
                "versions": registry.versions(name),
                "aliases": registry.aliases(name),
                "default": name == service.settings.default_model,
            }
            for name in registry.models()
        ]
    )


@bp.get("/<name>")
def show_model(name: str):
    """One model: its versions (with headline metrics), aliases and alias history."""
    registry = core().registry
    name = validate_name(name)
    versions = []
    for version in registry.versions(name):
        card = registry.card(name, version)
        versions.append(
            {
                "version": version,
                "created_at": card.get("created_at"),
                "test_accuracy": card.get("metrics", {}).get("test_accuracy"),
            }
        )
    return jsonify(
        name=name,
        versions=versions,
        aliases=registry.aliases(name),
        alias_history=registry.alias_history(name),
    )


@bp.get("/<name>/versions/<version>")
def show_version(name: str, version: str):
    """A version's card, plus whether this worker has it loaded and on which providers."""
    service = core()
    name, number = validate_name(name), parse_version(version)
    card = service.registry.card(name, number)
    loaded = service.loaded_version(name, number)
    folder = service.registry.version_dir(name, number)
    sizes = {
        file: (folder / file).stat().st_size
        for file in (MODEL_FILE, *VERSION_FILES)
        if (folder / file).is_file()
    }
    return jsonify(
        {
            **card,
            "files": sizes,
            "serving": {
                "loaded": loaded is not None,
                "device": service.settings.device,
                "providers": loaded.model.providers if loaded else service.providers,
            },
        }
    )


@bp.get("/<name>/versions/<version>/files/<filename>")
def version_file(name: str, version: str, filename: str):
    """One of a version's stored plots (training curves, confusion matrix)."""
    registry = core().registry
    name, number = validate_name(name), parse_version(version)
    if filename not in VERSION_FILES:
        raise HttpError(
            404, "file_not_found", f"no such file; a version serves {', '.join(VERSION_FILES)}"
        )
    # Absolute: send_file would read a relative path against the package, not the cwd.
    path = (registry.version_dir(name, number) / filename).resolve()
    registry.card(name, number)  # unknown model or version: its own 404 first
    if not path.is_file():
        raise HttpError(404, "file_not_found", f"version {number} of {name} has no {filename}")
    # Versions are immutable: a client may keep the file as long as it likes.
    return send_file(path, mimetype=VERSION_FILES[filename], max_age=86400, conditional=True)


def _require_admin() -> None:
    token = core().settings.admin_token
    if token is None:
        raise HttpError(
            403, "read_only", "model management is disabled: set FASHION_ADMIN_TOKEN to enable it"
        )
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Constant-time comparison: response timing must not reveal how much of the token matched.
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        raise HttpError(
            401,
            "unauthorized",
            "a valid 'Authorization: Bearer <token>' header is required",
            {"WWW-Authenticate": 'Bearer realm="fashion-serve"'},
        )


@bp.put("/<name>/aliases/<alias>")
def promote(name: str, alias: str):
    """Point an alias at a version: body {"version": N}. Needs the admin token."""
    _require_admin()
    body = request.get_json(silent=True)
    version = body.get("version") if isinstance(body, dict) else None
    if isinstance(version, float) and version.is_integer():  # 2.0 is JSON's integer 2 too
        version = int(version)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise BadRequest('send a JSON body {"version": N} with N a positive integer')
    return jsonify(core().set_alias(name, alias, version))


@bp.delete("/<name>/aliases/<alias>")
def rollback(name: str, alias: str):
    """Move an alias back to the version it pointed at before. Needs the admin token."""
    _require_admin()
    return jsonify(core().rollback(name, alias))
