"""The dashboard over HTTP (httpx against the app, its lifespan running, the in-process simulator):
login and sessions, CSRF, actions through the trade controls, History's filters and CSV, Performance,
and bad input answered with a page (4xx), never a 500."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from hit_server.dashboard.auth import COOKIE, LOGIN_ATTEMPTS_PER_MINUTE
from hit_server.testing import TEST_API_KEY, RunningServer, paper_settings, running_server
from hit_server.testing import place_signal as place
from hit_server.testing import signal_body as signal
from hit_server.testing import until_event as until

PASSWORD = "correct horse battery staple"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    settings = paper_settings(tmp_path, monitor_poll_seconds=0.05, dashboard_password=PASSWORD)
    async with running_server(settings) as running:
        yield running


@pytest.fixture
async def browser(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    """A client without the API key header: it has only what the dashboard's login gives it."""
    transport = httpx.ASGITransport(app=server.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


async def login(client: httpx.AsyncClient, secret: str = TEST_API_KEY) -> httpx.Response:
    return await client.post("/dashboard/login", data={"password": secret, "next": "/dashboard/now"})


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def text_of(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>([^<]*)', html)
    assert found, f"no #{element_id} in the page"
    return found.group(1).strip()


# -- login and sessions ---------------------------------------------------------------------------------


async def test_dashboard_sends_a_visitor_without_a_session_to_the_login_form(
    browser: httpx.AsyncClient,
) -> None:
    for path in ("/dashboard/now", "/dashboard/history?symbol=BTC-USDT", "/dashboard/performance"):
        reply = await browser.get(path)
        assert reply.status_code == 303 and reply.headers["location"].startswith("/dashboard/login?next=")
    form = await browser.get("/dashboard/login")
    assert form.status_code == 200 and 'name="password"' in form.text


async def test_dashboard_login_with_an_api_key_sets_a_strict_httponly_expiring_session_cookie(
    browser: httpx.AsyncClient,
) -> None:
    reply = await login(browser)
    assert reply.status_code == 303 and reply.headers["location"] == "/dashboard/now"
    cookie = reply.headers["set-cookie"]
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/dashboard", "Max-Age=43200"):
        assert attribute in cookie
    assert TEST_API_KEY not in cookie
    now = await browser.get("/dashboard/now")
    assert now.status_code == 200 and text_of(now.text, "mode").startswith("paper")
    assert (
        now.headers["x-frame-options"] == "DENY"
        and "script-src 'self'" in now.headers["content-security-policy"]
    )


async def test_dashboard_login_with_the_dashboard_password(browser: httpx.AsyncClient) -> None:
    assert (await login(browser, PASSWORD)).status_code == 303
    assert (await browser.get("/dashboard/performance")).status_code == 200


async def test_dashboard_login_refuses_a_wrong_password_without_a_cookie(browser: httpx.AsyncClient) -> None:
    for wrong in ("", "nope", PASSWORD + "x", TEST_API_KEY[:-1]):
        reply = await login(browser, wrong)
        assert reply.status_code == 401 and "set-cookie" not in reply.headers
        assert text_of(reply.text, "login-error") == "Wrong password or API key."
    assert (await browser.get("/dashboard/now")).status_code == 303


async def test_dashboard_login_attempts_are_rate_limited(browser: httpx.AsyncClient) -> None:
    for _ in range(LOGIN_ATTEMPTS_PER_MINUTE):
        assert (await login(browser, "wrong")).status_code == 401
    limited = await login(browser)  # even the right key, once over the limit
    assert limited.status_code == 429 and "set-cookie" not in limited.headers


async def test_dashboard_ignores_a_tampered_or_foreign_session_cookie(
    server: RunningServer, browser: httpx.AsyncClient
) -> None:
    cookie = (await login(browser)).cookies[COOKIE]
    body, signature = cookie.split(".")
    for forged in (
        f"{body}.{signature[:-2]}AA",
        f"{body[:-2]}AA.{signature}",
        "x",
        "a.b.c",
        "x" * 600 + "." + "y",
    ):
        browser.cookies.clear()
        browser.cookies.set(COOKIE, forged, domain="127.0.0.1", path="/dashboard")
        assert (await browser.get("/dashboard/now")).status_code == 303


async def test_dashboard_logout_ends_the_session(browser: httpx.AsyncClient) -> None:
    await login(browser)
    page = await browser.get("/dashboard/now")
    reply = await browser.post("/dashboard/logout", data={"csrf": csrf_of(page.text)})
    assert reply.status_code == 303 and reply.headers["location"] == "/dashboard/login"
    assert (await browser.get("/dashboard/now")).status_code == 303


async def test_dashboard_is_off_when_disabled(tmp_path: Path) -> None:
    async with running_server(paper_settings(tmp_path, dashboard_enabled=False)) as server:
        for path in ("/dashboard/login", "/dashboard/now", "/dashboard/static/dashboard.js"):
            assert (await server.http.get(path)).status_code == 404
        assert (
            await server.http.post("/dashboard/login", data={"password": TEST_API_KEY})
        ).status_code == 404


# -- CSRF and actions -------------------------------------------------------------------------------------


async def test_dashboard_refuses_a_post_without_the_sessions_csrf_token(
    server: RunningServer, browser: httpx.AsyncClient
) -> None:
    await place(server, signal("dash-csrf"))
    await login(browser)
    token = csrf_of((await browser.get("/dashboard/now")).text)
    forged = [
        ("/dashboard/halt", {"reason": "forged"}),
        ("/dashboard/halt", {"reason": "forged", "csrf": token[:-1] + ("1" if token[-1] == "0" else "0")}),
        ("/dashboard/resume", {}),
        ("/dashboard/trades/dash-csrf/act", {"action": "close", "key": "forged-1"}),
        ("/dashboard/logout", {"csrf": "0" * 64}),
    ]
    for path, data in forged:
        reply = await browser.post(path, data=data)
        assert reply.status_code == 403, path
    assert not server.service.halted.halted
    assert (await server.http.get("/api/v1/trades/dash-csrf")).json()["state"] == "open"
    other = httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app), base_url="http://127.0.0.1")
    async with other:  # a token from another session does not pass either
        await login(other)
        assert (await other.post("/dashboard/halt", data={"csrf": "1" * 64})).status_code == 403


async def test_dashboard_halt_and_resume_after_confirmation(
    server: RunningServer, browser: httpx.AsyncClient
) -> None:
    await login(browser)
    confirm = await browser.get("/dashboard/halt")
    assert confirm.status_code == 200 and "Confirm halt" in confirm.text
    done = await browser.post("/dashboard/halt", data={"csrf": csrf_of(confirm.text), "reason": "lunch"})
    assert done.status_code == 200 and text_of(done.text, "result") == "Trading is halted: lunch."
    assert server.service.halted.halted and server.service.halted.reason == "lunch"
    assert "HALTED: lunch" in text_of((await browser.get("/dashboard/now")).text, "halted")
    confirm = await browser.get("/dashboard/halt?resume=yes")
    done = await browser.post("/dashboard/resume", data={"csrf": csrf_of(confirm.text)})
    assert done.status_code == 200 and not server.service.halted.halted


async def test_dashboard_close_acts_once_per_confirmation_and_lands_in_history_with_the_exchanges_pnl(
    server: RunningServer, browser: httpx.AsyncClient
) -> None:
    await place(server, signal("dash-close", source={"channel": "alpha"}, raw_text="BTC long now"))
    await login(browser)
    trade_page = await browser.get("/dashboard/trades/dash-close")
    assert trade_page.status_code == 200 and text_of(trade_page.text, "raw-text") == "BTC long now"
    confirm = await browser.get("/dashboard/trades/dash-close/confirm?action=close&percent=100")
    assert text_of(confirm.text, "what") == "Close the whole position at market."
    key = re.search(r'name="key" value="([0-9a-f]+)"', confirm.text)
    assert key
    form = {"csrf": csrf_of(confirm.text), "key": key.group(1), "action": "close", "percent": "100"}
    first = await browser.post("/dashboard/trades/dash-close/act", data=form)
    again = await browser.post("/dashboard/trades/dash-close/act", data=form)  # a double submission
    assert first.status_code == again.status_code == 200
    assert text_of(first.text, "result") == text_of(again.text, "result")
    assert text_of(first.text, "result").startswith("closed ")
    await until(server, "dash-close", "closed")
    closes = [e for e in await _events(server, "dash-close") if e["type"] == "manual_close"]
    assert len(closes) == 1
    closed = [c.position for c in server.sim.position_history if c.position.inst_id == "BTC-USDT"]
    pnl = sum((p.realized_pnl - p.fees for p in closed), Decimal(0))
    history = await browser.get("/dashboard/history")
    row = re.search(r'data-signal-id="dash-close">(.*?)</tr>', history.text, re.S)
    assert row and f"{pnl:,.4f}" in row.group(1) and "alpha" in row.group(1)
    csv = await browser.get("/dashboard/history.csv")
    assert csv.headers["content-type"].startswith("text/csv")
    header, line = csv.text.splitlines()[:2]
    assert header.startswith("signal_id,symbol,side,source,closed_at,outcome,realized_pnl,fees")
    fields = line.split(",")
    assert fields[:4] == ["dash-close", "BTC-USDT", "long", "alpha"]
    assert Decimal(fields[6]) == pnl


async def _events(server: RunningServer, signal_id: str) -> list[dict[str, object]]:
    reply = await server.http.get("/api/v1/events", params={"signal_id": signal_id, "limit": 500})
    events: list[dict[str, object]] = reply.json()["events"]
    return events


async def test_dashboard_shows_a_refused_action_as_the_apis_sentence(
    server: RunningServer, browser: httpx.AsyncClient
) -> None:
    await place(server, signal("dash-refused"))
    await login(browser)
    confirm = await browser.get("/dashboard/trades/dash-refused/confirm?action=stop&price=70000")
    form = {"csrf": csrf_of(confirm.text), "key": "k-refused", "action": "stop", "price": "70000"}
    reply = await browser.post("/dashboard/trades/dash-refused/act", data=form)
    assert reply.status_code == 409 or 400 <= reply.status_code < 500
    assert "stop" in text_of(reply.text, "result").lower()
    missing = await browser.post("/dashboard/trades/nope-404/act", data={**form, "key": "k-404"})
    assert missing.status_code == 404


# -- History, Performance --------------------------------------------------------------------------------


async def _closed_trades(server: RunningServer) -> None:
    """A winner on BTC from channel alpha, a loser on ETH from channel beta (closed by their targets and
    stop on the simulator)."""
    await place(server, signal("win-1", source={"channel": "alpha"}))
    await server.set_price("BTC-USDT", "66500")
    await until(server, "win-1", "closed")
    eth = signal(
        "loss-1",
        symbol="ETH-USDT",
        side="short",
        stop_loss="3100",
        take_profits=["2900"],
        source={"channel": "beta"},
    )
    await server.set_price("ETH-USDT", "3000")
    await place(server, eth)
    await server.set_price("ETH-USDT", "3150")
    await until(server, "loss-1", "closed")


async def test_dashboard_history_filters(server: RunningServer, browser: httpx.AsyncClient) -> None:
    await _closed_trades(server)
    await login(browser)

    async def shown(**params: str) -> set[str]:
        reply = await browser.get("/dashboard/history", params=params)
        assert reply.status_code == 200, reply.text
        return set(re.findall(r'<tr data-signal-id="([^"]+)"', reply.text))

    assert await shown() == {"win-1", "loss-1"}
    assert await shown(symbol="eth-usdt") == {"loss-1"}
    assert await shown(source="ALPH") == {"win-1"}
    assert await shown(side="short") == {"loss-1"}
    assert await shown(outcome="win") == {"win-1"}
    assert await shown(outcome="loss", symbol="BTC-USDT") == set()
    assert await shown(**{"from": "2000-01-01", "to": "2999-12-31"}) == {"win-1", "loss-1"}
    assert await shown(**{"to": "2001-01-01"}) == set()
    csv = await browser.get("/dashboard/history.csv", params={"outcome": "loss"})
    assert [line.split(",")[0] for line in csv.text.splitlines()[1:]] == ["loss-1"]


async def test_dashboard_performance_per_source_and_symbol(
    server: RunningServer, browser: httpx.AsyncClient
) -> None:
    await _closed_trades(server)
    await login(browser)
    reply = await browser.get("/dashboard/performance")
    assert reply.status_code == 200
    assert text_of(reply.text, "win-rate") == "50.0%"
    avg_r = text_of(reply.text, "avg-r")
    assert avg_r != "–" and Decimal(avg_r)  # both trades had a fill, a stop and a contract value
    source_table = re.search(r'id="by-source">(.*?)</table>', reply.text, re.S)
    assert source_table and "alpha" in source_table.group(1) and "beta" in source_table.group(1)
    assert reply.text.count("<svg") == 2


# -- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/history?symbol=%3Cscript%3E",
        "/dashboard/history?side=up",
        "/dashboard/history?outcome=maybe",
        "/dashboard/history?from=2026-13-01",
        "/dashboard/history?from=2026-02-01&to=2026-01-01",
        "/dashboard/history?page=0",
        "/dashboard/history?page=abc",
        "/dashboard/history.csv?side=sideways",
        "/dashboard/trades/%00%01",
        "/dashboard/trades/" + "x" * 300,
        "/dashboard/trades/unknown-trade",
        "/dashboard/trades/t1/confirm?action=explode",
        "/dashboard/trades/t1/confirm?action=close&percent=abc",
        "/dashboard/trades/t1/confirm?action=close&percent=0",
        "/dashboard/trades/t1/confirm?action=close&percent=1e999",
        "/dashboard/trades/t1/confirm?action=stop&price=-1",
        "/dashboard/trades/t1/confirm?action=stop&price=NaN",
        "/dashboard/trades/t1/confirm?action=stop",
        "/dashboard/static/../settings.py",
        "/dashboard/static/nothing.js",
    ],
)
async def test_dashboard_answers_bad_input_with_a_page_not_a_500(
    browser: httpx.AsyncClient, path: str
) -> None:
    await login(browser)
    reply = await browser.get(path)
    assert 400 <= reply.status_code < 500, (path, reply.status_code)
    assert "Traceback" not in reply.text and "<script>" not in reply.text


async def test_dashboard_posts_with_garbage_bodies_are_refused_cleanly(
    server: RunningServer, browser: httpx.AsyncClient
) -> None:
    await place(server, signal("dash-garbage"))
    await login(browser)
    token = csrf_of((await browser.get("/dashboard/now")).text)
    headers = {"content-type": "application/x-www-form-urlencoded"}
    bodies = [
        b"\xff\xfe\x00",
        b"csrf=" + token.encode() + b"&action=close&percent=%ZZ&key=g1",
        b"csrf=" + token.encode() + b"&action=stop&price=1e999&key=g2",
        b"csrf=" + token.encode() + b"&action=close&percent=-5&key=g3",
        b"csrf=" + token.encode() + b"&action=fly&key=g4",
        b"csrf=" + token.encode() + b"&action=close&key=" + b"k" * 400,
        b"csrf=" + token.encode() + b"&action=close",
        b"&" * 5000,
    ]
    for body in bodies:
        reply = await browser.post("/dashboard/trades/dash-garbage/act", content=body, headers=headers)
        assert 400 <= reply.status_code < 500, (body[-40:], reply.status_code, reply.text[:300])
        assert "Traceback" not in reply.text
    assert (await browser.post("/dashboard/login", content=b"\xff", headers=headers)).status_code == 400
    assert (await server.http.get("/api/v1/trades/dash-garbage")).json()["state"] == "open"
