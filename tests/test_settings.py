"""Settings from FASHION_* variables: defaults, every variable read, bad values named, secrets."""

import ipaddress
from pathlib import Path

import pytest

from service.errors import FashionServeError
from service.settings import Settings, SettingsError


def test_no_variables_give_the_documented_defaults():
    settings = Settings.from_env({})
    assert settings == Settings()
    assert (settings.model_dir, settings.default_model, settings.default_alias) == (
        Path("models"),
        "fashion-mnist",
        "production",
    )
    assert settings.admin_token is None


def test_every_variable_is_read():
    env = {
        "FASHION_MODEL_DIR": "/srv/models",
        "FASHION_DEFAULT_MODEL": "shoes",
        "FASHION_DEFAULT_ALIAS": "staging",
        "FASHION_DEVICE": " CPU ",
        "FASHION_THREADS": "2",
        "FASHION_MAX_BATCH": "8",
        "FASHION_MAX_UPLOAD_BYTES": "1024",
        "FASHION_MAX_PIXELS": "784",
        "FASHION_ADMIN_TOKEN": "t0ken",
        "FASHION_RELOAD_INTERVAL": "0.5",
        "FASHION_MAX_LOADED": "3",
        "FASHION_PREDICTION_TTL": "60",
        "FASHION_FEEDBACK_TOKEN": "fb",
        "FASHION_FEEDBACK_RATE": "2.5",
        "FASHION_TRUSTED_PROXIES": "172.30.0.0/24, ::1",
        "FASHION_BIND": "0.0.0.0:9000",
        "FASHION_WORKERS": "4",
        "FASHION_TIMEOUT": "60",
        "FASHION_REQUEST_TIMEOUT": "20.5",
        "FASHION_KEEPALIVE": "10",
        "FASHION_WORKER_CLASS": "gthread",
        "FASHION_WORKER_THREADS": "8",
        "FASHION_ACCESS_LOG": "-",
        "FASHION_LOG_LEVEL": "debug",
    }
    assert Settings.from_env(env) == Settings(
        model_dir=Path("/srv/models"),
        default_model="shoes",
        default_alias="staging",
        device="cpu",
        threads=2,
        max_batch=8,
        max_upload_bytes=1024,
        max_pixels=784,
        admin_token="t0ken",
        reload_interval=0.5,
        max_loaded=3,
        prediction_ttl=60.0,
        feedback_token="fb",
        feedback_rate=2.5,
        trusted_proxies=(ipaddress.ip_network("172.30.0.0/24"), ipaddress.ip_network("::1")),
        bind="0.0.0.0:9000",
        workers=4,
        timeout=60,
        request_timeout=20.5,
        keepalive=10,
        worker_class="gthread",
        worker_threads=8,
        access_log="-",
        log_level="debug",
    )


def test_empty_values_mean_the_default_and_an_empty_token_means_no_token():
    env = {"FASHION_THREADS": "", "FASHION_MAX_BATCH": "  ", "FASHION_ADMIN_TOKEN": ""}
    assert Settings.from_env(env) == Settings()


@pytest.mark.parametrize(("timeout", "request_timeout"), [("60", 30.0), ("0", 0.0), ("3", 1.5)])
def test_the_request_budget_is_half_the_worker_timeout_unless_set(timeout, request_timeout):
    assert Settings.from_env({"FASHION_TIMEOUT": timeout}).request_timeout == request_timeout


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("FASHION_DEVICE", "tpu", "FASHION_DEVICE must be one of auto, cpu, cuda"),
        ("FASHION_THREADS", "two", "FASHION_THREADS must be an integer, not 'two'"),
        ("FASHION_THREADS", "0", "FASHION_THREADS must be at least 1"),
        ("FASHION_MAX_BATCH", "1.5", "FASHION_MAX_BATCH must be an integer"),
        ("FASHION_MAX_PIXELS", "783", "FASHION_MAX_PIXELS must be at least 784"),
        ("FASHION_RELOAD_INTERVAL", "0.01", "FASHION_RELOAD_INTERVAL must be at least 0.05"),
        ("FASHION_RELOAD_INTERVAL", "soon", "FASHION_RELOAD_INTERVAL must be a number"),
        ("FASHION_MAX_LOADED", "-1", "FASHION_MAX_LOADED must be at least 1"),
        ("FASHION_PREDICTION_TTL", "0", "FASHION_PREDICTION_TTL must be at least 1.0"),
        ("FASHION_FEEDBACK_RATE", "x", "FASHION_FEEDBACK_RATE must be a number"),
        ("FASHION_TRUSTED_PROXIES", "proxy", "FASHION_TRUSTED_PROXIES: 'proxy' does not appear"),
        ("FASHION_TRUSTED_PROXIES", "10.0.0.1/8", "FASHION_TRUSTED_PROXIES: 10.0.0.1/8 has host"),
        ("FASHION_DEFAULT_MODEL", "../etc", "FASHION_DEFAULT_MODEL: invalid model name"),
        ("FASHION_DEFAULT_ALIAS", "Prod", "FASHION_DEFAULT_ALIAS: invalid alias name"),
        ("FASHION_WORKERS", "0", "FASHION_WORKERS must be at least 1"),
        ("FASHION_REQUEST_TIMEOUT", "-1", "FASHION_REQUEST_TIMEOUT must be at least 0.0"),
        ("FASHION_KEEPALIVE", "x", "FASHION_KEEPALIVE must be an integer"),
        ("FASHION_CAPTURE_RATE", "1.5", "FASHION_CAPTURE_RATE must be 0 to 1, not 1.5"),
        ("FASHION_CAPTURE_RATE", "nan", "FASHION_CAPTURE_RATE must be 0 to 1, not nan"),
        ("FASHION_CAPTURE_RATE", "-0.1", "FASHION_CAPTURE_RATE must be at least 0.0"),
        ("FASHION_CAPTURE_MAX_BYTES", "4096", "FASHION_CAPTURE_MAX_BYTES must be at least 65536"),
        ("FASHION_CAPTURE_KEEP", "0", "FASHION_CAPTURE_KEEP must be at least 1.0"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(key, value, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({key: value})


def test_settings_made_in_code_are_held_to_the_same_rules():
    with pytest.raises(SettingsError, match="FASHION_DEFAULT_MODEL"):
        Settings(default_model="../etc")


def test_a_start_up_error_is_not_a_client_error():
    # The HTTP layer maps FashionServeError subclasses to 4xx answers; a bad setting never
    # reaches a client, it stops the start.
    assert not issubclass(SettingsError, FashionServeError)


def test_admin_token_is_read_from_the_file_fashion_admin_token_file_names(tmp_path: Path) -> None:
    """A Swarm or Kubernetes secret file gives the token, without its trailing newline."""
    secret = tmp_path / "fashion_admin_token"
    secret.write_text("s3cret-token\n")
    settings = Settings.from_env({"FASHION_ADMIN_TOKEN_FILE": str(secret)})
    assert settings.admin_token == "s3cret-token"


def test_admin_token_file_and_variable_together_are_refused(tmp_path: Path) -> None:
    """Two sources for one token: the service refuses to guess which one is meant."""
    secret = tmp_path / "token"
    secret.write_text("from-the-file")
    environ = {"FASHION_ADMIN_TOKEN_FILE": str(secret), "FASHION_ADMIN_TOKEN": "from-the-env"}
    with pytest.raises(SettingsError, match="not both"):
        Settings.from_env(environ)


def test_admin_token_file_that_cannot_be_read_stops_the_start(tmp_path: Path) -> None:
    """A named secret that is absent is a deployment mistake, not a read-only service."""
    with pytest.raises(SettingsError, match="FASHION_ADMIN_TOKEN_FILE: cannot read"):
        Settings.from_env({"FASHION_ADMIN_TOKEN_FILE": str(tmp_path / "missing")})


def test_an_empty_admin_token_file_leaves_the_service_read_only(tmp_path: Path) -> None:
    """As with an empty variable: a blank secret (Kubernetes' unset default) disables management."""
    secret = tmp_path / "token"
    secret.write_text(" \n")
    assert Settings.from_env({"FASHION_ADMIN_TOKEN_FILE": str(secret)}).admin_token is None


def test_admin_token_from_the_environment_still_works_and_empty_means_none() -> None:
    """Without the file setting the variable is used as before; empty disables management."""
    assert Settings.from_env({"FASHION_ADMIN_TOKEN": "t"}).admin_token == "t"
    assert Settings.from_env({"FASHION_ADMIN_TOKEN": ""}).admin_token is None
    assert Settings.from_env({}).admin_token is None
