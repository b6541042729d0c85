"""Settings read from the environment: the admin token from a secret file."""

from pathlib import Path

import pytest

from service.settings import Settings, SettingsError


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
