"""Settings from FASHION_* variables: defaults, every variable read, bad values named."""

from pathlib import Path

import pytest

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
    )


def test_empty_values_mean_the_default_and_an_empty_token_means_no_token():
    env = {"FASHION_THREADS": "", "FASHION_MAX_BATCH": "  ", "FASHION_ADMIN_TOKEN": ""}
    assert Settings.from_env(env) == Settings()


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
        ("FASHION_DEFAULT_MODEL", "../etc", "FASHION_DEFAULT_MODEL: invalid model name"),
        ("FASHION_DEFAULT_ALIAS", "Prod", "FASHION_DEFAULT_ALIAS: invalid alias name"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(key, value, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({key: value})
