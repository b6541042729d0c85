"""X-Forwarded-* believed from a trusted proxy's address only; from anyone else, never seen."""

import dataclasses
import ipaddress
import json

import pytest
from flask import request

from service.http import create_app
from tests.http.test_access_log import lines  # noqa: F401  (the fixture)

PROXY = "172.30.0.2"
SPOOFED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "fashion.example.com",
    "X-Forwarded-Port": "443",
}


@pytest.fixture
def proxied_client(settings):
    trusted = (ipaddress.ip_network("172.30.0.0/29"),)
    app = create_app(dataclasses.replace(settings, trusted_proxies=trusted))

    @app.get("/seen")
    def seen():  # what the app's views see of the client
        return {"remote": request.remote_addr, "url": request.url}

    yield app.test_client()
    app.extensions["fashion_serve"].close()


@pytest.mark.parametrize(
    ("peer", "remote", "url"),
    [
        (PROXY, "203.0.113.7", "https://fashion.example.com/seen"),
        ("172.30.0.9", "172.30.0.9", "http://localhost/seen"),  # outside the trusted network
        ("127.0.0.1", "127.0.0.1", "http://localhost/seen"),
    ],
)
def test_only_a_trusted_peer_names_the_client(proxied_client, lines, peer, remote, url):  # noqa: F811
    response = proxied_client.get("/seen", headers=SPOOFED, environ_base={"REMOTE_ADDR": peer})
    assert response.json == {"remote": remote, "url": url}
    assert json.loads(lines[-1])["remote"] == remote  # the access log names the same client


def test_no_proxy_is_trusted_by_default(client, lines):  # noqa: F811
    client.get("/healthz", headers=SPOOFED, environ_base={"REMOTE_ADDR": PROXY})
    assert json.loads(lines[-1])["remote"] == PROXY
