"""The page's model view in real Chromium: canary weights, live answers, live accuracy, drift."""

import requests

from tests.images import png
from tests.replay import first_test_items
from tests.ui.conftest import MODEL, TOKEN

ANSWERED = 30


def test_the_model_view_shows_the_canary_live_accuracy_and_drift(visit, server):
    admin = {"Authorization": f"Bearer {TOKEN}"}
    url = f"{server.url}/models/{MODEL}/aliases/production/canary"
    assert requests.put(url, json={"version": 2, "weight": 10}, headers=admin, timeout=30).ok
    images, labels = first_test_items(ANSWERED)
    for image, label in zip(images, labels.tolist(), strict=True):
        answer = requests.post(
            f"{server.url}/predict?version=1", files={"image": png(image)}, timeout=30
        )
        feedback = {"request_id": answer.headers["X-Request-ID"], "label": label}
        assert requests.post(f"{server.url}/feedback", json=feedback, timeout=30).ok
    try:
        visit.open(f"#models/{MODEL}/1")
        row = visit.page.locator("tr[data-alias=production] .canary")
        row.wait_for()
        assert row.inner_text() == "version 2 at 10 %"
        live = visit.page.locator("section.live")
        live.wait_for()
        text = live.inner_text()
        assert live.locator("dd").first.inner_text() == str(ANSWERED)  # images answered
        assert f"of {ANSWERED} reported" in text  # live accuracy from the feedback
        assert "drift (PSI)" in text
        # The shipped v1's card holds its confusion matrix: ten live and ten test-set bars.
        assert live.locator(".class-chart rect.live").count() == 10
        assert live.locator(".class-chart rect.test").count() == 10
        visit.screenshot("live")
        visit.assert_stayed_home()
    finally:
        requests.delete(url, headers=admin, timeout=30)
