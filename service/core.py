"""One process's core: its parts built once, and the two faces the HTTP layer talks to."""

import os
from typing import Any

from service.aliases import AliasFollower
from service.capture import Capture
from service.capture import folder as capture_folder
from service.contract import validate_name
from service.data_plane import DataPlane
from service.events import Observers
from service.feedback import Feedback
from service.loader import Loader
from service.monitoring import LiveAnswers, report
from service.registry import Registry
from service.registry_view import RegistryView
from service.runtime import choose_providers
from service.settings import Settings


class Core:
    """Builds the parts once, starts and stops them, and says what this process serves."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.observers = Observers()  # the HTTP layer appends its metrics here
        registry = Registry(settings.model_dir)
        # Fails at start, before any model is touched, when FASHION_DEVICE=cuda has no CUDA.
        providers = choose_providers(settings.device)
        self.providers = providers
        self._loader = Loader(registry, settings, providers, self.observers)
        self._aliases = AliasFollower(registry, settings, self._loader, self.observers)
        self.data_plane = DataPlane(settings, registry, self._aliases, providers, self.observers)
        self.registry_view = RegistryView(settings, registry, self._aliases, providers)
        self.feedback = Feedback(settings)
        self.live_answers = LiveAnswers(self.feedback.predictions)
        self.capture = Capture(capture_folder(settings.model_dir), settings.capture_rate,
                               settings.capture_max_bytes, settings.capture_keep)  # fmt: skip
        self._registry = registry

    def start(self) -> None:
        """Load the default model's default alias, then follow alias changes in the background."""
        self._aliases.start()

    def close(self) -> None:
        """Stop following alias changes."""
        self._aliases.close()

    def monitoring(self, name: str, version: int) -> dict[str, Any]:
        """A version's live answers against its test set, and its live accuracy."""
        name = validate_name(name)
        card = self._registry.card(name, version)
        key = (name, version)
        live = self.live_answers.snapshot().get(key)
        return report(name, version, card, live, self.feedback.tally.matrices().get(key))

    def is_ready(self) -> bool:
        """True once the default model's default alias answers (with a verified version)."""
        return self._aliases.is_ready()

    def status(self) -> dict[str, Any]:
        """What this process serves and what it refused, for /readyz.

        "degraded": some followed alias answers with a verified version other than its target's
        registry copy (refused: corrupt, missing, unloadable); it still answers, so it is ready.
        """
        serving, refused = self._aliases.report()
        ready = self.is_ready()
        degraded = any(entry["degraded"] for entry in serving)
        return {
            "ready": ready,
            "status": "degraded" if ready and degraded else "ready" if ready else "not_ready",
            "pid": os.getpid(),  # which worker answered: each gunicorn worker has its own state
            "default": {
                "model": self.settings.default_model,
                "alias": self.settings.default_alias,
            },
            "serving": serving,
            "loaded": [
                {"model": m.name, "version": m.version, "providers": m.model.providers}
                for m in self._loader.loaded()
            ],
            "refused": refused,
        }
