"""deploy/swarm checked without Docker: the stack's settings, probes and ports are the service's.

`make test-swarm` runs the stack for real; these checks catch drift between the stack file, the
HAProxy configuration and the service in `make test`, where no engine is needed.
"""

import re
from pathlib import Path

import yaml

from service.settings import Settings
from tests.deploy.test_k8s import REPO, gunicorn_bind, service_env_names

SWARM = REPO / "deploy" / "swarm"
STACK = yaml.safe_load((SWARM / "stack.yml").read_text())
HAPROXY = (SWARM / "haproxy.cfg").read_text()


def image_env(name: str) -> str:
    """An ENV value the Dockerfile sets for the service images."""
    return re.search(rf"{name}=(\S+)", (REPO / "Dockerfile").read_text()).group(1)


def test_the_api_service_uses_settings_the_service_reads_and_a_secret_file(tmp_path: Path):
    api = STACK["services"]["api"]
    env = api["environment"]
    assert set(env) <= service_env_names(), set(env) - service_env_names()
    assert "FASHION_ADMIN_TOKEN" not in env  # the token only ever comes from the secret
    (secret,) = api["secrets"]
    assert env["FASHION_ADMIN_TOKEN_FILE"] == f"/run/secrets/{secret}"
    assert STACK["secrets"][secret] == {"external": True}
    # The defaults the ${...} give, with the secret file stood in for, start the service.
    defaults = {k: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(v)) for k, v in env.items()}
    token = tmp_path / "token"
    token.write_text("t\n")
    settings = Settings.from_env({**defaults, "FASHION_ADMIN_TOKEN_FILE": str(token)})
    assert settings.admin_token == "t"
    # The registry volume is mounted where the image's settings look for it.
    (mount,) = api["volumes"]
    assert mount["target"] == image_env("FASHION_MODEL_DIR")
    assert STACK["services"]["train"]["volumes"] == [mount]


def test_updates_start_the_new_replica_first_and_rollback():
    deploy = STACK["services"]["api"]["deploy"]
    assert deploy["update_config"]["order"] == "start-first"
    assert deploy["update_config"]["failure_action"] == "rollback"
    assert deploy["endpoint_mode"] == "dnsrr"
    assert set(deploy["resources"]["limits"]) == {"cpus", "memory"}
    assert STACK["services"]["train"]["deploy"]["replicas"] == 0


def test_health_checks_and_the_load_balancer_reach_the_port_the_service_binds(client, monkeypatch):
    _, port = gunicorn_bind({"FASHION_BIND": image_env("FASHION_BIND")}, monkeypatch).rsplit(":", 1)
    healthcheck = " ".join(STACK["services"]["api"]["healthcheck"]["test"])
    path = re.search(rf"http://127\.0\.0\.1:{port}(/\w+)", healthcheck).group(1)
    assert client.get(path).status_code == 200
    assert re.search(r"option httpchk GET (\S+)", HAPROXY).group(1) == path
    assert re.search(r"server-template \S+ \d+ tasks\.api:(\d+)", HAPROXY).group(1) == port
    assert re.search(r"^\s*bind :(\d+)$", HAPROXY, re.M).group(1) == str(
        STACK["services"]["lb"]["ports"][0]["target"]
    )
    assert STACK["services"]["lb"]["ports"][0]["mode"] == "host"
