"""The compose deployment's HTTPS proxy checked without Docker: its limits are the service's.

`make test-docker` runs the proxy for real (413 at the limit, redirect, HTTP/2, request IDs);
these checks catch drift between docker-compose.yml, the nginx template and the service's own
values in `make test`, where no engine is needed.
"""

import re
import runpy

import pytest
import yaml

from service import gunicorn_worker, http1
from service.settings import Settings
from tests.deploy.test_k8s import GUNICORN_CONF, REPO, service_env_names

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
PROXY = REPO / "deploy" / "proxy"
TEMPLATE = (PROXY / "nginx.conf.template").read_text()
ENTRYPOINT = (PROXY / "entrypoint.sh").read_text()
DEFAULT = re.compile(r"\$\{(\w+):-([^}]*)\}")


def default(value: str) -> str:
    """The default of a compose `${NAME:-default}` value (a plain value stands for itself)."""
    match = DEFAULT.fullmatch(str(value))
    return match[2] if match else str(value)


def proxy_env() -> dict[str, str]:
    return {k: default(v) for k, v in COMPOSE["services"]["proxy"]["environment"].items()}


@pytest.mark.parametrize(
    ("name", "service_value"),
    [
        ("FASHION_MAX_UPLOAD_BYTES", Settings().max_upload_bytes),
        ("FASHION_TIMEOUT", Settings().timeout),
        ("FASHION_KEEPALIVE", runpy.run_path(str(GUNICORN_CONF))["keepalive"]),
        ("FASHION_READ_TIMEOUT", http1.HEAD_TIMEOUT),
        ("FASHION_READ_TIMEOUT", http1.BODY_GRACE),
        ("FASHION_SEND_TIMEOUT", gunicorn_worker.SEND_TIMEOUT),
        ("FASHION_MAX_HEADER_BYTES", http1.MAX_HEAD),
        ("FASHION_MAX_FIELD_BYTES", http1.MAX_FIELD),
    ],
)
def test_the_proxy_gets_the_service_s_own_limits(name, service_value):
    assert float(proxy_env()[name]) == service_value


def test_the_api_and_the_proxy_read_the_limits_from_one_place():
    api = COMPOSE["services"]["api"]["environment"]
    for name in ("FASHION_MAX_UPLOAD_BYTES", "FASHION_TIMEOUT"):
        assert api[name] == COMPOSE["services"]["proxy"]["environment"][name]
    assert set(api) <= service_env_names() | {"FASHION_TIMEOUT"}, set(api) - service_env_names()


def test_the_template_uses_only_what_the_entrypoint_fills_in():
    used = set(re.findall(r"\$\{(FASHION_\w+)\}", TEMPLATE))
    (substituted,) = re.findall(r"envsubst '([^']*)'", ENTRYPOINT)
    assert used == set(re.findall(r"\$\{(\w+)\}", substituted))
    # Every limit the proxy enforces comes from a setting, none is written in the template.
    for directive in ("client_max_body_size", "client_header_timeout", "proxy_read_timeout"):
        assert re.search(rf"{directive} \$\{{FASHION_\w+\}}", TEMPLATE), directive


def test_only_the_proxy_is_published_and_x_forwarded_is_trusted_from_its_network_alone():
    services = COMPOSE["services"]
    assert "ports" not in services["api"]
    assert services["api"]["networks"] == ["back", "metrics"]
    back = COMPOSE["networks"]["back"]
    assert back["internal"] is True
    # Only the proxy shares `back` with the api: nothing else can pass for it.
    on_back = [name for name, s in services.items() if "back" in s.get("networks", [])]
    assert on_back == ["proxy", "api"]
    assert COMPOSE["networks"]["metrics"]["internal"] is True
    (subnet,) = [default(c["subnet"]) for c in back["ipam"]["config"]]
    assert default(services["api"]["environment"]["FASHION_TRUSTED_PROXIES"]) == subnet
    for port in services["proxy"]["ports"]:
        assert port.startswith("${FASHION_ADDRESS:-127.0.0.1}:")
    # nginx sets these from what it saw itself; a client's own values are not passed on.
    for header, value in (("X-Forwarded-For", "$remote_addr"), ("X-Forwarded-Proto", "https")):
        assert f"proxy_set_header {header} {value};" in TEMPLATE
