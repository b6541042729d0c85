"""Errors Flask raises itself (unknown route, wrong method) leave as JSON too."""

from tests.http.checks import assert_error


def test_unknown_route_and_method_are_json(client):
    assert_error(client.get("/nope"), 404)
    assert_error(client.get("/predict"), 405)
