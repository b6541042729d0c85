"""X-Forwarded-* believed from the reverse proxy alone (FASHION_TRUSTED_PROXIES), dropped otherwise.

Behind the proxy, the client's address, scheme and host are what the proxy says; from any other
peer those headers are whatever a client wrote, so the app never sees them.
"""

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from service.settings import Network

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

FORWARDED = (
    "HTTP_FORWARDED",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_PREFIX",
)


class TrustedProxies:
    """Apply one proxy's X-Forwarded-For/-Proto/-Host/-Port when the peer is a trusted proxy."""

    def __init__(self, app: "WSGIApplication", trusted: tuple[Network, ...]) -> None:
        self.app, self.trusted = app, trusted
        self.fixed = ProxyFix(app, x_for=1, x_proto=1, x_host=1, x_port=1)

    def __call__(
        self, environ: "WSGIEnvironment", start_response: "StartResponse"
    ) -> Iterable[bytes]:
        if self.is_trusted(environ.get("REMOTE_ADDR", "")):
            return self.fixed(environ, start_response)
        for name in FORWARDED:
            environ.pop(name, None)
        return self.app(environ, start_response)

    def is_trusted(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:  # no address (a Unix socket): no proxy to trust
            return False
        return any(address in network for network in self.trusted)


def init_app(app: Flask, trusted: tuple[Network, ...]) -> None:
    """Outermost wrapper: the access log and the app see the client the proxy names."""
    app.wsgi_app = TrustedProxies(app.wsgi_app, trusted)  # type: ignore[method-assign]
