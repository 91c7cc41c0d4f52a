"""Screenshots of the dashboard's main pages at desktop and phone widths: `./run.sh screenshots`.

    .venv/bin/python docs/screenshots.py [--out docs/screenshots] [--closed 36]

A paper server in a throwaway folder gets a journal the way the benchmark fills one (bench/dashboard.py:
real signals closed by the simulator's price moves over the last 60 days, wins and losses from four
sources), three open trades, and BTC-USDT walked through TP1 so its stop sits at breakeven. Then the real
server (uvicorn on a free 127.0.0.1 port) is opened in Debian's headless Chromium (tools/browser.py finds
it; `./run.sh screenshots` installs it first where it may) and Now, the BTC-USDT trade, History and
Performance are saved as PNGs, each page whole, 1280 and 390 CSS pixels wide:
`<out>/<page>-desktop.png` and `<out>/<page>-phone.png`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]  # bench/ as a package; tools/browser.py

import browser  # noqa: E402 - found through the path set just above

from bench.dashboard import build  # noqa: E402
from hit_server.server import create_app  # noqa: E402
from hit_server.testing import TEST_API_KEY, UvicornThread, paper_settings  # noqa: E402

WIDTHS = {"desktop": 1280, "phone": 390}
OPEN = ["BTC-USDT", "ETH-USDT", "SOL-USDT"]  # long, short, long (bench/dashboard.py alternates)
WAIT_S = 30.0


def say(text: str) -> None:
    sys.stdout.write(f"[hit] {text}\n")
    sys.stdout.flush()


@contextmanager
def chromium(profile: Path) -> Iterator[WebDriver]:
    found = browser.find(os.environ)
    if found is None:
        raise SystemExit(
            "no chromium/chromedriver: run ./run.sh screenshots (it installs them) or install "
            "Debian's chromium and chromium-driver"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = found.chromium
    for argument in browser.ARGUMENTS:
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(options=options, service=ChromeService(found.driver))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(condition: Callable[[], object], what: str) -> None:
    """Poll `condition()` until true; SystemExit naming `what` after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def walk_btc_through_tp1(api: httpx.Client) -> None:
    """BTC-USDT past its first target; the monitor then moves its stop to breakeven."""
    trade = api.get("/api/v1/trades/open-00").json()
    tp1 = Decimal(trade["targets"][0]["price"])
    reply = api.post("/api/v1/paper/price", json={"symbol": "BTC-USDT", "price": str(tp1 * Decimal("1.002"))})
    reply.raise_for_status()
    wait_for(
        lambda: api.get("/api/v1/trades/open-00").json()["stop"]["at_breakeven"], "the stop at breakeven"
    )
    current = {p["symbol"]: Decimal(p["price"]) for p in api.get("/api/v1/paper/prices").json()["prices"]}
    for symbol, move in (("ETH-USDT", "0.994"), ("SOL-USDT", "0.997")):  # some unrealised P&L to show
        price = str(current[symbol] * Decimal(move))
        api.post("/api/v1/paper/price", json={"symbol": symbol, "price": price}).raise_for_status()


def shoot(driver: WebDriver, url: str, path: Path, width: int) -> None:
    """The page at `url`, whole, `width` CSS pixels wide (a phone's viewport when narrow)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width < 600},
    )
    driver.get(url)
    wait_for(lambda: driver.execute_script("return document.readyState") == "complete", f"{url} to load")
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )
    path.write_bytes(driver.get_screenshot_as_png())
    say(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} ({path.stat().st_size // 1024} KB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--closed", type=int, default=36)
    args = parser.parse_args()
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hit-screenshots-") as tmp:
        workdir = Path(tmp)
        say(f"trading {args.closed} paper signals to a close for the history (a few seconds)")
        asyncio.run(build(workdir, args.closed, OPEN, wait_every=1, paper_balance=Decimal(10_000)))
        app = create_app(paper_settings(workdir, monitor_poll_seconds=0.1))
        with (
            UvicornThread(app, lifespan="on") as server,
            httpx.Client(base_url=server.url, headers={"X-API-Key": TEST_API_KEY}, timeout=30) as api,
            chromium(workdir / "profile") as driver,
        ):
            walk_btc_through_tp1(api)
            driver.get(f"{server.url}/dashboard/login")
            driver.find_element(By.ID, "password").send_keys(TEST_API_KEY)
            driver.find_element(By.ID, "login").click()
            wait_for(lambda: driver.current_url.endswith("/dashboard/now"), "the login")
            pages = {
                "now": "/dashboard/now",
                "trade": "/dashboard/trades/open-00",
                "history": "/dashboard/history",
                "performance": "/dashboard/performance",
            }
            for name, path in pages.items():
                for device, width in WIDTHS.items():
                    shoot(driver, server.url + path, out / f"{name}-{device}.png", width)
            driver.get("about:blank")  # Now's polling stops before the server does
    return 0


if __name__ == "__main__":
    sys.exit(main())
