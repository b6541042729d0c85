"""The page in real headless Chromium: what a person sees must be what the JSON API answers."""

import json
from pathlib import Path

import pytest
import requests

from tests.images import checkerboard, png
from tests.ui.conftest import MODEL, TOKEN, UPLOAD_LIMIT, Visit

GALLERY = Path(__file__).resolve().parents[2] / "service/http/static/ui/gallery"
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n"

pytestmark = pytest.mark.slow


def gallery(kind: str = "test") -> list[dict]:
    return [e for e in json.loads((GALLERY / "gallery.json").read_text()) if e["kind"] == kind]


def api_predict(server, data: bytes, **query) -> dict:
    response = requests.post(
        f"{server.url}/models/{MODEL}/predict", params=query, files={"image": data}, timeout=30
    )
    return response.json()


def api_seen(server, data: bytes, **query) -> list[list[int]]:
    """The API's 28×28 model input for an image, as the 0..255 grey levels the page paints."""
    response = requests.post(
        f"{server.url}/preprocess",
        params={"format": "json", **query},
        files={"image": data},
        timeout=30,
    )
    pixels = response.json()["images"][0]["pixels"]
    return [[round(255 * min(1.0, max(0.0, p))) for p in row] for row in pixels]


def assert_seen(card, expected: list[list[int]]) -> None:
    """The card's preview canvas holds exactly the model's input."""
    canvas = card.locator(".seen canvas[data-ready=true]")
    canvas.wait_for()
    grey = canvas.evaluate(
        "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)"
        ".filter((_, i) => i % 4 === 0)"
    )
    assert [grey[row * 28 : row * 28 + 28] for row in range(28)] == expected


def bars(card) -> dict[str, float]:
    rows = card.locator(".bar").evaluate_all(
        "rows => rows.map(row => [row.dataset.class, row.dataset.probability])"
    )
    return {label: float(value) for label, value in rows}


def assert_shows(card, expected: dict) -> None:
    """The card's bars are the API's ten probabilities, its winner the API's label."""
    card.locator(".bar.top").wait_for()
    assert bars(card) == expected["probabilities"]  # the same doubles, not just close
    assert card.locator(".bar.top").get_attribute("data-class") == expected["label"]


def test_a_gallery_image_chosen_by_keyboard_shows_the_apis_answer_and_the_network(visit, server):
    visit.open()
    entry = gallery()[0]
    button = visit.page.locator(f"#gallery button[data-file='{entry['file']}']")
    button.focus()
    visit.page.keyboard.press("Enter")
    card = visit.page.locator(".result").first
    expected = api_predict(server, (GALLERY / entry["file"]).read_bytes())["predictions"][0]
    assert_shows(card, expected)
    truth = card.locator(".bar.truth")
    if expected["class_id"] == entry["class_id"]:
        assert truth.count() == 0
    else:  # the lecture's chart: the true class in red beside the blue prediction
        assert truth.get_attribute("data-class") == entry["label"]
    assert "answered in" in card.locator(".result-meta").inner_text()
    assert_seen(card, api_seen(server, (GALLERY / entry["file"]).read_bytes()))
    card.locator(".network[data-ready=true]").wait_for()
    assert card.locator(".diagram .units rect").count() == 128  # v1's hidden layer
    assert card.locator(".diagram line").count() == 12
    visit.screenshot("gallery")
    visit.assert_stayed_home()


def test_drawn_pictures_in_the_gallery_credit_their_source_and_classify(visit, server):
    visit.open()
    entry = gallery("real")[0]
    credits = visit.page.locator("#gallery + .credits")
    credits.wait_for()
    assert entry["credit"] in credits.inner_text()
    button = visit.page.locator(f"#gallery button[data-file='{entry['file']}']")
    assert entry["credit"] in button.get_attribute("title")
    button.click()
    card = visit.page.locator(".result").first
    assert_shows(
        card, api_predict(server, (GALLERY / entry["file"]).read_bytes())["predictions"][0]
    )
    assert entry["credit"] in card.locator(".result-title").inner_text()
    visit.assert_stayed_home()


def test_an_uploaded_photo_rendering_is_read_as_a_photo_in_every_mode(visit, server):
    visit.open()
    entry = gallery("photo")[0]
    data = (GALLERY / entry["file"]).read_bytes()
    visit.page.locator("#files").set_input_files(
        {"name": entry["file"], "mimeType": "image/jpeg", "buffer": data}
    )
    card = visit.page.locator(".result").first
    assert_shows(card, api_predict(server, data)["predictions"][0])
    assert_seen(card, api_seen(server, data))
    assert "read as photo" in card.locator(".seen figcaption").inner_text()
    visit.screenshot("photo")
    visit.page.select_option("#mode", "dataset")  # re-reads it as if it were a dataset image
    card.locator(".seen figcaption", has_text="read as dataset").wait_for()
    assert_shows(card, api_predict(server, data, mode="dataset")["predictions"][0])
    assert_seen(card, api_seen(server, data, mode="dataset"))
    card.locator(".network[data-ready=true]").wait_for()
    visit.assert_stayed_home()


def test_several_uploads_at_once_and_another_version(visit, server):
    visit.open()
    entries = gallery()[3:5]
    files = [
        {"name": e["file"], "mimeType": "image/png", "buffer": (GALLERY / e["file"]).read_bytes()}
        for e in entries
    ]
    visit.page.locator("#files").set_input_files(files)
    cards = visit.page.locator(".result")
    # Newest first: the last file's card is on top.
    for card, file in zip([cards.nth(1), cards.nth(0)], files, strict=True):
        assert_shows(card, api_predict(server, file["buffer"])["predictions"][0])
    visit.page.select_option("#target", "version:2")
    for card, file in zip([cards.nth(1), cards.nth(0)], files, strict=True):
        card.locator(".result-meta", has_text="v2").wait_for()
        assert_shows(card, api_predict(server, file["buffer"], version=2)["predictions"][0])
        card.locator(".network[data-ready=true]").wait_for()
        assert card.locator(".diagram .units rect").count() == 32  # the tiny v2's hidden layer
    visit.assert_stayed_home()


def test_a_convolutional_version_shows_its_feature_maps(visit, server):
    visit.open()
    visit.page.select_option("#target", "version:3")
    entry = gallery()[20]
    visit.page.locator(f"#gallery button[data-file='{entry['file']}']").click()
    card = visit.page.locator(".result").first
    data = (GALLERY / entry["file"]).read_bytes()
    assert_shows(card, api_predict(server, data, version=3)["predictions"][0])
    card.locator(".network[data-ready=true]").wait_for()
    layers = card.locator(".maps-layer")
    assert layers.count() == 2  # the tiny CNN's two convolutions: 3 maps, then 2
    assert [layers.nth(i).locator("canvas").count() for i in range(2)] == [3, 2]
    # Each map is painted from the API's values: its brightest pixel is the layer's maximum.
    painted = (
        layers.nth(1)
        .locator("canvas")
        .first.evaluate(
            "c => Math.max(...c.getContext('2d').getImageData(0, 0, c.width, c.height).data)"
        )
    )
    assert painted > 0
    visit.screenshot("cnn")
    visit.assert_stayed_home()


def test_a_picture_that_is_not_clothing_says_so_with_its_bars_greyed(
    visit, server, novelty_reference
):
    visit.open()
    visit.page.select_option("#target", "version:4")
    board, clothing = png(checkerboard()), png(novelty_reference.clothing())
    visit.page.locator("#files").set_input_files(
        [
            {"name": "clothing.png", "mimeType": "image/png", "buffer": clothing},
            {"name": "checkerboard.png", "mimeType": "image/png", "buffer": board},
        ]
    )
    flagged, passed = visit.page.locator(".result").nth(0), visit.page.locator(".result").nth(1)
    expected = api_predict(server, board, version=4)["predictions"][0]
    assert expected["in_distribution"] is False
    assert_shows(flagged, expected)  # the bars are still shown, the API's own numbers
    notice = flagged.locator(".unknown")
    notice.wait_for()
    assert notice.inner_text() == "This does not look like clothing to version 4."
    assert flagged.locator(".bars.greyed").count() == 1
    filtered = flagged.locator(".bars").evaluate("list => getComputedStyle(list).filter")
    assert "grayscale" in filtered
    assert_shows(passed, api_predict(server, clothing, version=4)["predictions"][0])
    assert passed.locator(".unknown").is_hidden()
    assert passed.locator(".bars.greyed").count() == 0
    visit.screenshot("not-clothing")
    visit.page.select_option("#target", "version:1")  # v1 does not judge: no message
    flagged.locator(".result-meta", has_text="v1").wait_for()
    assert_shows(flagged, api_predict(server, board, version=1)["predictions"][0])
    assert flagged.locator(".unknown").is_hidden()
    assert flagged.locator(".bars.greyed").count() == 0
    visit.assert_stayed_home()


def test_pasted_and_dropped_pictures_are_classified(visit, server):
    visit.open()
    entry = gallery()[7]
    data = (GALLERY / entry["file"]).read_bytes()
    script = """([bytes, event]) => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([new Uint8Array(bytes)], "shot.png", {type: "image/png"}));
        if (event === "paste") {
            document.dispatchEvent(new ClipboardEvent("paste", {clipboardData: transfer}));
        } else {
            const drop = document.querySelector("#drop");
            drop.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true}));
        }
    }"""
    expected = api_predict(server, data)["predictions"][0]
    for count, event in enumerate(("paste", "drop"), start=1):
        visit.page.evaluate(script, [list(data), event])
        assert visit.page.locator(".result").count() == count
        assert_shows(visit.page.locator(".result").first, expected)
    visit.assert_stayed_home()


def test_a_pdf_shows_the_apis_415_message(visit, server):
    visit.open()
    visit.page.locator("#files").set_input_files(
        {"name": "invoice.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    response = requests.post(f"{server.url}/predict", files={"image": PDF}, timeout=30)
    assert response.status_code == 415
    error = visit.page.locator(".result .error[role=alert]").first
    error.wait_for()
    assert error.inner_text() == f"415 {response.json()['error']['message']}"
    assert visit.page.locator(".result .bar").count() == 0
    visit.screenshot("pdf")
    visit.assert_stayed_home()


def test_an_oversized_picture_shows_the_apis_413_message(visit, server):
    visit.open()
    big = b"\x89PNG\r\n\x1a\n" + bytes(2 * UPLOAD_LIMIT)
    response = requests.post(f"{server.url}/predict", files={"image": big}, timeout=30)
    assert response.status_code == 413
    visit.page.locator("#files").set_input_files(
        {"name": "huge.png", "mimeType": "image/png", "buffer": big}
    )
    error = visit.page.locator(".result .error[role=alert]").first
    error.wait_for()
    assert error.inner_text() == f"413 {response.json()['error']['message']}"
    visit.assert_stayed_home()


def test_promote_and_roll_back_with_a_token(visit, server):
    visit.open("#models")
    promote = visit.page.get_by_role("button", name="Promote v2")
    assert promote.is_disabled()  # no token, no management
    visit.page.get_by_label("Admin token").fill(TOKEN)
    visit.page.get_by_label("Promote to alias").fill("production")
    promote.click()
    visit.page.locator("#admin-status", has_text="now serves version 2").wait_for()
    assert requests.get(f"{server.url}/models", timeout=10).json()["models"][0]["aliases"] == {
        "production": 2
    }
    visit.page.locator("tr[data-alias=production] .version", has_text="2").wait_for()
    visit.page.get_by_role("button", name="Roll back production").click()
    visit.page.locator("#admin-status", has_text="now serves version 1").wait_for()
    assert requests.get(f"{server.url}/models", timeout=10).json()["models"][0]["aliases"] == {
        "production": 1
    }
    # The token lived in the page's memory only.
    assert visit.context.cookies() == []
    assert visit.page.evaluate("localStorage.length + sessionStorage.length") == 0
    visit.assert_stayed_home()


def test_a_wrong_token_is_refused_with_the_apis_message(visit, server):
    visit.open("#models")
    visit.page.get_by_label("Admin token").fill("not-the-token")
    visit.page.get_by_role("button", name="Promote v2").click()
    visit.page.locator("#admin-status", has_text="Refused: 401").wait_for()
    aliases = requests.get(f"{server.url}/models", timeout=10).json()["models"][0]["aliases"]
    assert aliases == {"production": 1}
    visit.assert_stayed_home()


def test_a_version_page_shows_its_card_and_stored_plots(visit):
    visit.open(f"#models/{MODEL}/1")
    card = visit.page.locator(".card")
    card.wait_for()
    assert "88.9 %" in card.inner_text()  # the shipped v1's test accuracy
    assert card.locator(".per-class .bar").count() == 10
    for plot in card.locator(".plot img").all():
        plot.scroll_into_view_if_needed()
        visit.page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=plot.element_handle()
        )
    assert card.locator(".plot img").count() == 2
    visit.screenshot("version")
    visit.assert_stayed_home()


def test_a_quantized_version_page_names_the_version_it_was_made_from(visit, registry):
    parity = registry.card(MODEL, 5)["parity"]
    visit.open(f"#models/{MODEL}/5")
    card = visit.page.locator(".card")
    card.wait_for()
    text = card.inner_text()
    assert "int8 convolutions, quantized from version 3" in text
    assert f"same top class on {100 * parity['top1_agreement']:.1f} %" in text
    assert "Keras vs ONNX" not in text  # its parity is against version 3, not Keras
    visit.assert_stayed_home()


def test_phone_width_needs_no_sideways_scrolling(browser, server):
    visit = Visit(browser, server, "phone", viewport={"width": 375, "height": 812}, is_mobile=True)
    try:
        visit.open()
        visit.page.locator("#gallery button").nth(10).click()
        visit.page.locator(".result .network[data-ready=true]").wait_for()
        assert visit.page.evaluate("document.documentElement.scrollWidth <= innerWidth")
        assert visit.page.locator("#camera").get_attribute("capture") == "environment"
        visit.screenshot("classify")
        visit.assert_stayed_home()
    finally:
        visit.context.close()
