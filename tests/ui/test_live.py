"""The page's model view in real Chromium: canary weights, shadows and their agreement, live
answers, live accuracy, drift and the out-of-distribution share."""

import re

import requests

from tests.images import checkerboard, png
from tests.replay import first_test_items
from tests.ui.conftest import MODEL, TOKEN
from tests.waiting import wait_for

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


SHADOWED = 12


def test_the_model_view_shows_the_shadow_its_agreement_and_the_unknown_share(visit, server):
    admin = {"Authorization": f"Bearer {TOKEN}"}
    url = f"{server.url}/models/{MODEL}/aliases/production/shadow"
    assert requests.put(url, json={"version": 3}, headers=admin, timeout=30).ok
    images, _ = first_test_items(SHADOWED)

    def compared() -> int:
        summary = requests.get(f"{server.url}/models/{MODEL}/shadows", timeout=30).json()
        return sum(row["compared"] for row in summary["comparisons"] if row["version"] == 3)

    def answered_and_compared(sent: list[int]) -> bool:
        """One more request to production (version 1); version 3 answers a copy of those that
        reach a worker already following the shadow, within its CPU budget."""
        image = images[len(sent) % SHADOWED]
        assert requests.post(f"{server.url}/predict", files={"image": png(image)}, timeout=30).ok
        sent.append(1)
        return compared() >= SHADOWED

    try:
        sent: list[int] = []
        wait_for(lambda: answered_and_compared(sent), "the shadows to compare the copies")
        visit.open(f"#models/{MODEL}/3")
        row = visit.page.locator("tr[data-alias=production] .shadow")
        row.wait_for()
        assert row.inner_text() == "version 3"
        live = visit.page.locator("section.live")
        live.wait_for()
        shown = re.search(r"([\d,]+) images against version 1 \(production\)", live.inner_text())
        assert shown is not None, live.inner_text()
        assert SHADOWED <= int(shown.group(1).replace(",", "")) <= len(sent)
        # Version 4 judges its inputs: a checkerboard is flagged, a test image passes.
        pictures = [("image", png(images[0])), ("image", png(checkerboard()))]
        assert requests.post(f"{server.url}/predict?version=4", files=pictures, timeout=30).ok
        visit.open(f"#models/{MODEL}/4")
        visit.page.get_by_text("Live answers of version 4").wait_for()
        assert "50.0 % of 2 judged" in visit.page.locator("section.live").inner_text()
        visit.screenshot("shadow")
        visit.assert_stayed_home()
    finally:
        requests.delete(url, headers=admin, timeout=30)
