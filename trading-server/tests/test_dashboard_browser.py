"""The dashboard in a real browser: Debian's headless Chromium driven by Selenium (no browser download),
against the real server (uvicorn on a free 127.0.0.1 port, paper mode, the in-process simulator).

A person's path through it: log in; a signal posted to the API shows up on Now by itself (the page's
polling, no reload) within 5 s; a price move fills TP1 and Now shows the stop at breakeven; the trade is
closed from its page and lands in History with the exchange's P&L; all that with the JavaScript console
free of errors. And the refusals: a wrong password, a forged POST without the CSRF token (from the
dashboard's own origin and from another site).

`./run.sh test` installs chromium and chromium-driver when missing (tools/browser.py) and passes their
paths in HIT_TEST_CHROMIUM / HIT_TEST_CHROMEDRIVER; without them these tests fail in CI and skip elsewhere.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from hit_server.dashboard.auth import COOKIE
from hit_server.server import create_app
from hit_server.testing import TEST_API_KEY, UvicornThread, paper_settings, signal_body

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"
APPEARS_WITHIN_S = 5.0  # the promise for a new trade on Now
WAIT_S = 20.0  # other conditions: generous, the machine may be busy


def browser_tools() -> ModuleType:
    """tools/browser.py (standard library only, so it is loaded by path): where Chromium is, its flags."""
    spec = importlib.util.spec_from_file_location("hit_tools_browser", ROOT / "tools" / "browser.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def chrome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """One headless Chromium for the module, with a new empty profile and its console log kept."""
    tools = browser_tools()
    found = tools.find(os.environ)
    if found is None:
        message = "no chromium/chromedriver: ./run.sh test installs Debian's chromium and chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; in CI the browser tests must run")
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = found.chromium
    for argument in tools.ARGUMENTS:
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument("--window-size=1280,900")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=ChromeService(found.driver))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@dataclass
class Dashboard:
    """The browser on one running server, with the server's API (API key) beside it."""

    url: str
    app: FastAPI
    api: httpx.Client
    driver: WebDriver
    console: list[dict[str, Any]] = field(default_factory=list)

    def open(self, path: str) -> None:
        self.driver.get(self.url + path)
        self.collect()

    def collect(self) -> None:
        self.console.extend(self.driver.get_log("browser"))  # reading the log empties it

    def errors(self) -> list[dict[str, Any]]:
        self.collect()
        return [entry for entry in self.console if entry["level"] == "SEVERE"]

    def login(self, secret: str = PASSWORD) -> None:
        self.open("/dashboard/login")
        self.driver.find_element(By.ID, "password").send_keys(secret)
        self.driver.find_element(By.ID, "login").click()
        # the login page itself has a heading: wait for the answer (another page, or the login page again
        # with its error) before anything else, or a busy machine sees the page the click left
        self.until(lambda: "/dashboard/login" not in self.driver.current_url
                   or self.driver.find_elements(By.ID, "login-error"), "the login's answer")
        self.until(lambda: self.driver.find_elements(By.CSS_SELECTOR, "main h1, main #live"), "a page")
        self.collect()

    def until(self, condition: Callable[[], Any], what: str, within: float = WAIT_S) -> Any:
        """The condition's first true value, polled; a failure naming `what` after `within` seconds."""

        def check(_: WebDriver) -> Any:
            try:
                return condition()
            except StaleElementReferenceException:  # the polled part was replaced under us
                return False

        try:
            return WebDriverWait(self.driver, within, poll_frequency=0.05).until(check)
        except TimeoutException:
            pytest.fail(f"timed out after {within:.0f} s waiting for {what}")

    def text(self, css: str) -> str:
        return self.driver.find_element(By.CSS_SELECTOR, css).text.strip()

    def row(self, signal_id: str) -> WebElement | None:
        found = self.driver.find_elements(By.CSS_SELECTOR, f'tr[data-signal-id="{signal_id}"]')
        return found[0] if found else None

    def move_price(self, symbol: str, price: str) -> None:
        reply = self.api.post("/api/v1/paper/price", json={"symbol": symbol, "price": price})
        assert reply.status_code == 200, reply.text

    @property
    def halted(self) -> bool:
        return bool(self.app.state.service.halted.halted)


@pytest.fixture
def dashboard(tmp_path: Path, chrome: WebDriver) -> Iterator[Dashboard]:
    settings = paper_settings(tmp_path, monitor_poll_seconds=0.05, dashboard_password=PASSWORD)
    app = create_app(settings)
    with (
        UvicornThread(app, lifespan="on") as server,
        httpx.Client(base_url=server.url, headers={"X-API-Key": TEST_API_KEY}, timeout=30) as api,
    ):
        chrome.execute_cdp_cmd("Network.clearBrowserCookies", {})  # cookies ignore the port
        chrome.get_log("browser")  # the previous test's console
        try:
            yield Dashboard(server.url, app, api, chrome)
        finally:
            chrome.get("about:blank")  # no polling left running against a stopped server


def test_browser_follows_a_paper_trade_from_its_signal_to_history_with_a_clean_console(
    dashboard: Dashboard,
) -> None:
    d = dashboard
    d.login()
    assert d.driver.current_url.endswith("/dashboard/now")
    assert d.text("#no-open") == "No open trades."
    d.driver.execute_script("window.hitNoReload = true;")  # gone if the page is loaded again

    posted = time.monotonic()
    body = signal_body("web-1", source={"platform": "discord", "channel": "alpha"}, raw_text="BTC long now")
    reply = d.api.post("/api/v1/signals", json=body)
    assert reply.status_code == 201 and reply.json()["status"] == "placed", reply.text
    d.until(lambda: d.row("web-1"), "the new trade on Now", within=APPEARS_WITHIN_S)
    assert time.monotonic() - posted <= APPEARS_WITHIN_S
    assert d.driver.execute_script("return window.hitNoReload === true;"), "Now was reloaded, not polled"
    assert d.text('tr[data-signal-id="web-1"] .stop') == "58000"

    d.move_price("BTC-USDT", "62500")  # through TP1 (62000): the monitor moves the stop to the entry
    d.until(lambda: d.driver.find_elements(By.CSS_SELECTOR, 'tr[data-signal-id="web-1"] .stop .be'), "BE")
    row = d.row("web-1")
    assert row is not None
    cells = [cell.text.strip() for cell in row.find_elements(By.TAG_NAME, "td")]
    entry, stop, targets = cells[3], cells[6], cells[7]
    assert stop == f"{entry} BE" and targets == "1/3"
    assert d.driver.execute_script("return window.hitNoReload === true;")

    row.find_element(By.TAG_NAME, "a").click()
    d.until(lambda: d.driver.find_elements(By.ID, "stop"), "the trade's page")
    assert "at breakeven" in d.text("#stop") and d.text("#raw-text") == "BTC long now"
    assert "TP1 62000 (hit)" in d.text("dl.facts")
    d.collect()

    d.driver.find_element(By.ID, "close").click()
    d.until(lambda: d.driver.find_elements(By.ID, "what"), "the confirmation")
    assert d.text("#what") == "Close the whole position at market."
    d.collect()
    d.driver.find_element(By.ID, "confirm").click()
    d.until(lambda: d.driver.find_elements(By.ID, "result"), "the action's result")
    assert d.text("#result").startswith("closed"), d.text("#result")
    d.collect()

    def closed_in_history() -> WebElement | None:
        d.open("/dashboard/history")
        return d.row("web-1")

    history_row = d.until(closed_in_history, "the trade in History")
    closed = [c.position for c in d.app.state.sim_app.state.sim.position_history]
    pnl = sum((p.realized_pnl - p.fees for p in closed if p.inst_id == "BTC-USDT"), Decimal(0))
    assert pnl != 0 and f"{pnl:,.4f}" in history_row.find_element(By.CSS_SELECTOR, ".pnl").text
    assert "alpha" in history_row.text and "long" in history_row.text

    d.open("/dashboard/performance")
    assert d.text("#perf-pnl") == f"{pnl:,.2f}"
    assert d.errors() == [], d.errors()


def test_browser_login_refuses_a_wrong_password(dashboard: Dashboard) -> None:
    d = dashboard
    d.login("not the password at all")
    assert d.text("#login-error") == "Wrong password or API key."
    assert COOKIE not in {cookie["name"] for cookie in d.driver.get_cookies()}
    d.open("/dashboard/now")
    assert "/dashboard/login" in d.driver.current_url and d.driver.find_elements(By.ID, "password")
    d.login()  # the right one still works after a refusal
    assert d.driver.current_url.endswith("/dashboard/now")


FORGE = """
const form = document.createElement("form");
form.method = "post";
form.action = arguments[0];
for (const [name, value] of Object.entries(arguments[1])) {
  const input = document.createElement("input");
  input.type = "hidden"; input.name = name; input.value = value;
  form.appendChild(input);
}
document.body.appendChild(form);
form.submit();
"""


def test_browser_refuses_a_forged_post_without_the_csrf_token(dashboard: Dashboard) -> None:
    d = dashboard
    d.login()

    # A script on the dashboard's own origin, with the session cookie, but without the form's token.
    d.driver.execute_script(FORGE, "/dashboard/halt", {"reason": "forged", "csrf": "0" * 64})
    d.until(lambda: "expired or was not sent by the dashboard" in d.text("main"), "the refusal")
    assert not d.halted

    # Another site posting to the dashboard: the SameSite=Strict cookie stays home, the token is unknown.
    d.driver.get("data:text/html,<title>elsewhere</title><body></body>")
    d.driver.execute_script(FORGE, f"{d.url}/dashboard/halt", {"reason": "forged from afar"})
    d.until(lambda: d.driver.current_url.startswith(d.url), "the cross-site post's answer")
    d.until(lambda: "Log in first" in d.text("main"), "the cross-site refusal")
    assert not d.halted

    # The same session halts through the real form, with its token: the refusals above were the token's.
    d.open("/dashboard/now")
    d.driver.find_element(By.ID, "halt").click()
    d.until(lambda: d.driver.find_elements(By.ID, "reason"), "the halt confirmation")
    d.driver.find_element(By.ID, "confirm").click()
    d.until(lambda: d.driver.find_elements(By.ID, "result"), "the halt's result")
    assert d.halted
