"""Retake the README's screenshot, docs/ui.png: the page after classifying one gallery image.

    .venv/bin/python -m scripts.screenshot [--file test-23.png]

Serves the shipped registry under gunicorn on a free loopback port and drives Debian's headless
Chromium; the default image is one the shipped version gets wrong, so the picture shows the
predicted class in blue beside the true one in red.
"""

import argparse
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.e2e.server import GunicornServer

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", default="test-23.png", help="the gallery image to classify")
    parser.add_argument("--out", type=Path, default=REPO / "docs/ui.png")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        GunicornServer(REPO / "models", Path(tmp) / "gunicorn.log", workers=1) as server,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1100, "height": 1000})
        page.goto(f"{server.url}/")
        page.wait_for_selector("body[data-ready=true]")
        page.click(f"#gallery button[data-file='{args.file}']")
        page.wait_for_selector(".result .network[data-ready=true]")
        page.wait_for_selector(".result .seen canvas[data-ready=true]")
        page.screenshot(path=args.out, full_page=True)
        browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
