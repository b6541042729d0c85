"""The page's weight and speed on loopback, measured in Debian's headless Chromium.

`.venv/bin/python -m bench.page [--rounds 15]`: per round, `/` in a fresh browser context; first
contentful paint, the `page-ready` mark, and a gallery click until its bars are drawn.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.e2e.server import GunicornServer

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"


def measure(rounds: int) -> dict[str, list[float]]:
    """Milliseconds per round for first paint, ready and classify; bytes of the page itself."""
    samples: dict[str, list[float]] = {"first paint": [], "ready": [], "click → bars + network": []}
    with (
        tempfile.TemporaryDirectory() as tmp,
        GunicornServer(REPO / "models", Path(tmp) / "gunicorn.log", workers=1) as server,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        sizes: dict[str, int] = {}
        for round_ in range(rounds):
            context = browser.new_context()
            page = context.new_page()
            if round_ == 0:
                page.on("response", lambda r: sizes.__setitem__(r.url, len(r.body())))
            page.goto(f"{server.url}/")
            page.wait_for_selector("body[data-ready=true]")
            samples["first paint"].append(
                page.evaluate("performance.getEntriesByName('first-contentful-paint')[0].startTime")
            )
            samples["ready"].append(
                page.evaluate("performance.getEntriesByName('page-ready')[0].startTime")
            )
            started = time.perf_counter()
            page.locator("#gallery button").first.click()
            page.locator(".result .network[data-ready=true]").wait_for()
            samples["click → bars + network"].append((time.perf_counter() - started) * 1000)
            context.close()
        browser.close()
    own = {url: size for url, size in sizes.items() if url.endswith(("/", ".js", ".css"))}
    return samples, own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    samples, own = measure(args.rounds)
    print(f"{'measure':<26}{'median ms':>10}{'min':>8}{'max':>8}   ({args.rounds} rounds)")
    for name, values in samples.items():
        print(f"{name:<26}{statistics.median(values):>10.0f}{min(values):>8.0f}{max(values):>8.0f}")
    for url, size in own.items():
        print(f"{url.split('/', 3)[-1] or '/':<26}{size:>10,} bytes")
    print(f"{'page total':<26}{sum(own.values()):>10,} bytes")


if __name__ == "__main__":
    main()
