"""Configuration from FASHION_* environment variables, validated once at start."""

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from service.contract import DEFAULT_ALIAS, validate_alias, validate_name
from service.preprocess import DEFAULT_MAX_PIXELS

DEVICES = ("auto", "cpu", "cuda")
Number = TypeVar("Number", int, float)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_KIND_NAMES: dict[type, str] = {int: "an integer", float: "a number"}


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot start with (not a client error)."""


@dataclass(frozen=True)
class Settings:
    """Everything the service and its gunicorn read from the environment (docs/operations.md)."""

    model_dir: Path = Path("models")
    default_model: str = "fashion-mnist"
    default_alias: str = DEFAULT_ALIAS
    device: str = "auto"
    threads: int = 1
    max_batch: int = 256
    max_upload_bytes: int = 16 * 1024 * 1024
    max_pixels: int = DEFAULT_MAX_PIXELS
    admin_token: str | None = None
    reload_interval: float = 1.0
    max_loaded: int = 4
    # Feedback: how long predictions are remembered, who may report (None: anyone), how often.
    prediction_ttl: float = 3600.0
    feedback_token: str | None = None
    feedback_rate: float = 20.0
    # Payload capture (service/capture.py): the share of image requests kept; 0 is off.
    capture_rate: float = 0.0
    capture_max_bytes: int = 256 * 1024 * 1024
    capture_keep: float = 7 * 24 * 3600.0
    # CPU a shadow version may spend, as a share of its worker's serving CPU (service/shadow.py).
    shadow_share: float = 0.05
    # Peers whose X-Forwarded-* headers are believed (the reverse proxy); none by default.
    trusted_proxies: tuple[Network, ...] = ()
    # gunicorn's side, read by service/gunicorn.conf.py.
    bind: str = "127.0.0.1:8000"
    workers: int = 2
    timeout: int = 30
    # A request's work budget (service/deadline.py): half the worker timeout unless set; 0: none.
    request_timeout: float = 15.0
    # Seconds an idle keep-alive connection is kept (nginx 75, uvicorn 5, gunicorn 2).
    keepalive: int = 5
    worker_class: str = "service.gunicorn_worker.BufferedWorker"
    worker_threads: int = 4
    access_log: str | None = None
    log_level: str = "info"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Read and validate FASHION_* variables; raise SettingsError naming the bad one."""
        env = os.environ if environ is None else environ
        device = env.get("FASHION_DEVICE", cls.device).strip().lower()
        if device not in DEVICES:
            raise SettingsError(
                f"FASHION_DEVICE must be one of {', '.join(DEVICES)}, not {device!r}"
            )
        timeout = _number(env, "FASHION_TIMEOUT", cls.timeout, int, minimum=0)
        return cls(
            model_dir=Path(env.get("FASHION_MODEL_DIR", str(cls.model_dir))),
            default_model=env.get("FASHION_DEFAULT_MODEL", cls.default_model),
            default_alias=env.get("FASHION_DEFAULT_ALIAS", cls.default_alias),
            device=device,
            threads=_number(env, "FASHION_THREADS", cls.threads, int, minimum=1),
            max_batch=_number(env, "FASHION_MAX_BATCH", cls.max_batch, int, minimum=1),
            max_upload_bytes=_number(
                env, "FASHION_MAX_UPLOAD_BYTES", cls.max_upload_bytes, int, minimum=1
            ),
            max_pixels=_number(env, "FASHION_MAX_PIXELS", cls.max_pixels, int, minimum=784),
            admin_token=_admin_token(env),
            reload_interval=_number(
                env, "FASHION_RELOAD_INTERVAL", cls.reload_interval, float, minimum=0.05
            ),
            max_loaded=_number(env, "FASHION_MAX_LOADED", cls.max_loaded, int, minimum=1),
            prediction_ttl=_number(
                env, "FASHION_PREDICTION_TTL", cls.prediction_ttl, float, minimum=1.0
            ),
            feedback_token=env.get("FASHION_FEEDBACK_TOKEN") or None,
            feedback_rate=_number(
                env, "FASHION_FEEDBACK_RATE", cls.feedback_rate, float, minimum=0.1
            ),
            capture_rate=_number(env, "FASHION_CAPTURE_RATE", cls.capture_rate, float, minimum=0.0),
            capture_max_bytes=_number(
                env, "FASHION_CAPTURE_MAX_BYTES", cls.capture_max_bytes, int, minimum=65536
            ),
            capture_keep=_number(env, "FASHION_CAPTURE_KEEP", cls.capture_keep, float, minimum=1.0),
            shadow_share=_number(
                env, "FASHION_SHADOW_SHARE", cls.shadow_share, float, minimum=0.001
            ),
            trusted_proxies=_networks(env, "FASHION_TRUSTED_PROXIES"),
            bind=env.get("FASHION_BIND", cls.bind),
            workers=_number(env, "FASHION_WORKERS", cls.workers, int, minimum=1),
            timeout=timeout,
            request_timeout=_number(
                env, "FASHION_REQUEST_TIMEOUT", timeout / 2, float, minimum=0.0
            ),
            keepalive=_number(env, "FASHION_KEEPALIVE", cls.keepalive, int, minimum=0),
            worker_class=env.get("FASHION_WORKER_CLASS", cls.worker_class),
            worker_threads=_number(
                env, "FASHION_WORKER_THREADS", cls.worker_threads, int, minimum=1
            ),
            access_log=env.get("FASHION_ACCESS_LOG") or None,
            log_level=env.get("FASHION_LOG_LEVEL", cls.log_level),
        )

    def __post_init__(self) -> None:
        # Settings built in code (tests, tools) are held to the same rules as the environment's.
        _name("FASHION_DEFAULT_MODEL", self.default_model)
        _name("FASHION_DEFAULT_ALIAS", self.default_alias, validate_alias)
        if not 0 <= self.capture_rate <= 1:
            raise SettingsError(f"FASHION_CAPTURE_RATE must be 0 to 1, not {self.capture_rate}")


_current: Settings | None = None


def load() -> Settings:
    """Read and validate the environment now; current() answers with the result from then on.

    gunicorn.conf.py calls it in the master, so a bad value stops the start before any fork,
    and the forked workers inherit the same object.
    """
    global _current
    _current = Settings.from_env()
    return _current


def current() -> Settings:
    """This process's settings: the ones load() read, or read now if it never ran."""
    return _current if _current is not None else load()


def _admin_token(env: Mapping[str, str]) -> str | None:
    """FASHION_ADMIN_TOKEN, or the content of the file FASHION_ADMIN_TOKEN_FILE names.

    The file form (Docker's `*_FILE` convention) reads an orchestrator's secret, so the token
    never sits in the environment. Empty, either way, means "no token": management stays
    disabled rather than open. A named file that cannot be read stops the start.
    """
    path = env.get("FASHION_ADMIN_TOKEN_FILE")
    if not path:
        return env.get("FASHION_ADMIN_TOKEN") or None
    if env.get("FASHION_ADMIN_TOKEN"):
        raise SettingsError("set FASHION_ADMIN_TOKEN or FASHION_ADMIN_TOKEN_FILE, not both")
    try:
        # A trailing newline is how most tools write a secret file; it is not part of the token.
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise SettingsError(f"FASHION_ADMIN_TOKEN_FILE: cannot read {path!r}: {error}") from None
    return token or None


def _networks(env: Mapping[str, str], key: str) -> tuple[Network, ...]:
    """Comma-separated addresses or CIDR networks (10.0.0.0/8, ::1)."""
    try:
        return tuple(
            ipaddress.ip_network(item.strip())
            for item in env.get(key, "").split(",")
            if item.strip()
        )
    except ValueError as error:
        raise SettingsError(f"{key}: {error}") from None


def _name(key: str, value: str, validate: Callable[[str], str] = validate_name) -> str:
    try:
        return validate(value)
    except ValueError as error:
        raise SettingsError(f"{key}: {error}") from None


def _number(
    env: Mapping[str, str], key: str, default: Number, kind: type[Number], minimum: Number
) -> Number:
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{key} must be {_KIND_NAMES[kind]}, not {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{key} must be at least {minimum}, not {raw!r}")
    return value
