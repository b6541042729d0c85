"""The registry as the HTTP layer shows it: models, versions, cards, files; promote, roll back."""

from pathlib import Path
from typing import Any

from service.aliases import AliasFollower
from service.contract import validate_name
from service.errors import FileNotFound
from service.registry import MODEL_FILE, Registry
from service.runtime import Providers, provider_names, provider_options
from service.settings import Settings

# A version's stored files anyone may fetch: the training job's plots. The model itself and
# anything else in the version folder stay private.
PUBLIC_FILES = ("training.png", "confusion.png", "reliability.png")


class RegistryView:
    """Read the registry for clients, and move aliases through the process that follows them."""

    def __init__(
        self, settings: Settings, registry: Registry, aliases: AliasFollower, providers: Providers
    ) -> None:
        self.settings = settings
        self._registry = registry
        self._aliases = aliases
        self._providers = providers

    def list_models(self) -> list[dict[str, Any]]:
        """Every model in the registry with its versions and aliases."""
        registry = self._registry
        return [
            {
                "name": name,
                "versions": registry.versions(name),
                "aliases": registry.aliases(name),
                "default": name == self.settings.default_model,
            }
            for name in registry.models()
        ]

    def describe_model(self, name: str) -> dict[str, Any]:
        """One model: its versions (with headline metrics), aliases and alias history."""
        registry = self._registry
        name = validate_name(name)
        versions = []
        for version in registry.versions(name):
            card = registry.card(name, version)
            metrics = card.get("metrics")  # a card is free-form JSON: null, a list, ...
            versions.append(
                {
                    "version": version,
                    "created_at": card.get("created_at"),
                    "test_accuracy": metrics.get("test_accuracy")
                    if isinstance(metrics, dict)
                    else None,
                }
            )
        return {
            "name": name,
            "versions": versions,
            "aliases": registry.aliases(name),
            "alias_history": registry.alias_history(name),
            "canaries": registry.canaries(name),
            "shadows": registry.shadows(name),
            "alias_log": registry.alias_log(name),
        }

    def version_card(self, name: str, version: int) -> dict[str, Any]:
        """A version's card, plus whether this process has it loaded and on which providers."""
        name = validate_name(name)
        card = self._registry.card(name, version)
        loaded = self._aliases.loader.get(name, version)
        folder = self._registry.version_dir(name, version)
        files = {
            file: (folder / file).stat().st_size
            for file in (MODEL_FILE, *PUBLIC_FILES)
            if (folder / file).is_file()
        }
        return {
            **card,
            "files": files,
            "serving": {
                "loaded": loaded is not None,
                "device": self.settings.device,
                "providers": loaded.model.providers if loaded else provider_names(self._providers),
                # The options each provider runs with (CUDA: use_tf32 "0"), as onnxruntime
                # reports them once loaded, else as they would be passed.
                "provider_options": loaded.model.provider_options
                if loaded
                else provider_options(self._providers),
                "unfused_int8": loaded.model.unfused_int8 if loaded else None,
            },
        }

    def version_file(self, name: str, version: int, filename: str) -> Path:
        """The absolute path of one of a version's public stored files (PUBLIC_FILES)."""
        name = validate_name(name)
        if filename not in PUBLIC_FILES:
            raise FileNotFound(f"no such file; a version serves {', '.join(PUBLIC_FILES)}")
        self._registry.card(name, version)  # an unknown model or version: its own error first
        path = self._registry.version_dir(name, version) / filename
        if not path.is_file():
            raise FileNotFound(f"version {version} of {name} has no {filename}")
        return path.resolve()

    def versions(self, name: str, version: int | None = None) -> list[int]:
        """A model's versions, once the version (default: the production alias's) is found."""
        name = validate_name(name)
        self._registry.resolve(name, version=version)
        return self._registry.versions(name)

    def set_alias(self, name: str, alias: str, version: int) -> dict[str, Any]:
        """Point an alias at a version after proving this process can load it."""
        return self._aliases.set_alias(name, alias, version)

    def rollback(self, name: str, alias: str) -> dict[str, Any]:
        """Move an alias back to the version it pointed at before."""
        return self._aliases.rollback(name, alias)

    def set_canary(self, name: str, alias: str, version: int, weight: int) -> dict[str, Any]:
        """Send a share of an alias's traffic to a version, after proving it loads here."""
        return self._aliases.set_canary(name, alias, version, weight)

    def clear_canary(self, name: str, alias: str, reason: str) -> dict[str, Any]:
        """End an alias's canary: all its traffic goes to its target again."""
        return self._aliases.clear_canary(name, alias, reason)
