"""Issue #13: the HTTP API's rough edges, each as a user met it, through the HTTP API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hit_server.server import create_app
from hit_server.testing import (
    RunningServer,
    paper_settings,
    place_signal,
    running_server,
    signal_body,
    until_event,
)

JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(paper_settings(tmp_path)) as running:
        yield running


def assert_error(reply: httpx.Response, status: int, code: str) -> str:
    """The error's message, once the reply is `status` in the error shape with `code`."""
    assert reply.status_code == status, reply.text
    body: dict[str, Any] = reply.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    assert message
    return message


def eth_signal(signal_id: str) -> dict[str, Any]:
    """A market long on ETH-USDT (the model's mark is near 3,000) that the server places."""
    return signal_body(signal_id, symbol="ETH-USDT", stop_loss="2900", take_profits=["3100"])


def routes_with_a_body() -> list[str]:
    """Every /api/v1 route whose OpenAPI operation takes a request body (all of them are POST)."""
    app = create_app(paper_settings(Path("/nonexistent-never-used")))
    return [
        path
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/api/v1") and "requestBody" in operations.get("post", {})
    ]


# -- 4. a body that is not JSON is 400 invalid_json; JSON that breaks the schema is 422 ---------------


def test_api_the_routes_with_a_body_are_these() -> None:
    actions = {f"/api/v1/trades/{{signal_id}}/{action}" for action in ("close", "cancel", "stop", "targets")}
    paper = "/api/v1/paper/price"
    accounts = "/api/v1/accounts"
    assert set(routes_with_a_body()) == {"/api/v1/signals", "/api/v1/halt", paper, accounts, *actions}


@pytest.mark.parametrize("path", routes_with_a_body())
@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b"{not json", JSON),  # malformed: FastAPI's json_invalid validation error
        (b'{"reason": "caf\xe9"}', JSON),  # not UTF-8: FastAPI's own HTTP 400
        (b'{"reason": "maintenance"}', {"Content-Type": "text/plain"}),  # not sent as JSON
        (b'{"reason": "maintenance"}', {}),  # no content type at all
    ],
    ids=["malformed", "not-utf8", "text-plain", "no-content-type"],
)
async def test_api_body_that_is_not_json_is_400_invalid_json_on_every_route(
    server: RunningServer, path: str, content: bytes, headers: dict[str, str]
) -> None:
    reply = await server.http.post(path, content=content, headers=headers)

    assert "JSON" in assert_error(reply, 400, "invalid_json")
    assert not (await server.http.get("/api/v1/stats")).json()["halted"]


@pytest.mark.parametrize("path", routes_with_a_body())
@pytest.mark.parametrize("body", [b"[1, 2]", b'{"bogus": 1}', b'"text"'], ids=["array", "unknown", "string"])
async def test_api_json_that_breaks_the_schema_is_422_on_every_route(
    server: RunningServer, path: str, body: bytes
) -> None:
    reply = await server.http.post(path, content=body, headers=JSON)

    assert_error(reply, 422, "invalid_request")


# -- 1. /halt without a body halts with the defaults -------------------------------------------------


async def event_types(server: RunningServer) -> list[str]:
    reply = await server.http.get("/api/v1/events", params={"limit": 500})
    return [event["type"] for event in reply.json()["events"]]


@pytest.mark.parametrize(
    "send",
    [{}, {"json": {}}, {"content": b"", "headers": JSON}, {"content": b"null", "headers": JSON}],
    ids=["no-body", "empty-object", "empty-json-body", "null"],
)
async def test_api_halt_without_a_body_halts_with_the_defaults(
    server: RunningServer, send: dict[str, Any]
) -> None:
    reply = await server.http.post("/api/v1/halt", **send)

    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["halted"] is True and answer["reason"] == "halted by operator"
    assert answer["cancelled_orders"] == 0 and answer["closed_positions"] == 0
    assert (await server.http.get("/api/v1/stats")).json()["halted"] is True


def test_api_halt_body_is_optional_in_the_openapi() -> None:
    app = create_app(paper_settings(Path("/nonexistent-never-used")))
    operation = app.openapi()["paths"]["/api/v1/halt"]["post"]

    assert not operation["requestBody"].get("required", False)


# -- 2. a second halt keeps the first one's reason and time -----------------------------------------


async def test_api_second_halt_keeps_the_first_reason_and_time(server: RunningServer) -> None:
    first = (await server.http.post("/api/v1/halt", json={"reason": "exchange maintenance"})).json()

    second = await server.http.post("/api/v1/halt", json={"reason": "second thoughts"})

    assert second.status_code == 200, second.text
    assert second.json() == first  # the standing halt, unchanged: same reason, same since
    assert first["reason"] == "exchange maintenance" and first["since"] is not None
    assert await event_types(server) == ["halted"]
    signal = await server.http.post("/api/v1/signals", json=signal_body("while-halted"))
    assert "trading is halted" in signal.json()["reason"]


async def test_api_second_halt_still_closes_positions_when_asked(server: RunningServer) -> None:
    await place_signal(server, signal_body("open-before-halt"))
    await server.http.post("/api/v1/halt", json={"reason": "first"})

    ask = {"reason": "close them", "close_positions": True}
    second = (await server.http.post("/api/v1/halt", json=ask)).json()

    assert second["reason"] == "first" and second["closed_positions"] == 1
    assert (await server.http.get("/api/v1/positions")).json()["positions"] == []


async def test_api_halt_twice_and_resume_twice_on_every_journal(tmp_path: Path, journal_url: str) -> None:
    """The halt's test-and-set is one conditional UPDATE: the same answer on SQLite and PostgreSQL."""
    async with running_server(paper_settings(tmp_path, database_url=journal_url)) as server:
        first = (await server.http.post("/api/v1/halt", json={"reason": "one"})).json()
        second = (await server.http.post("/api/v1/halt", json={"reason": "two"})).json()
        await server.http.post("/api/v1/resume")
        await server.http.post("/api/v1/resume")
        types = await event_types(server)

    assert second == first and first["reason"] == "one"
    assert types == ["halted", "resumed"]


# -- 3. only a real resume records a "resumed" event ------------------------------------------------


async def test_api_resume_when_not_halted_records_no_event(server: RunningServer) -> None:
    idle = await server.http.post("/api/v1/resume")
    await server.http.post("/api/v1/halt")
    resumed = await server.http.post("/api/v1/resume")
    again = await server.http.post("/api/v1/resume")

    assert [r.status_code for r in (idle, resumed, again)] == [200, 200, 200]
    assert idle.json()["halted"] is False and again.json()["halted"] is False
    assert await event_types(server) == ["halted", "resumed"]


# -- 5. a symbol filter is matched as signals write it, and refused when it can't be a symbol ---------


@pytest.mark.parametrize("written", ["eth-usdt", "Eth-Usdt", "ETH-USDT"])
async def test_api_trades_symbol_filter_is_case_insensitive(server: RunningServer, written: str) -> None:
    await place_signal(server, eth_signal("eth-1"))
    await place_signal(server, signal_body("btc-1"))

    page = (await server.http.get("/api/v1/trades", params={"symbol": written})).json()

    assert [trade["signal_id"] for trade in page["trades"]] == ["eth-1"] and page["total"] == 1


@pytest.mark.parametrize("value", ["eth", "ETHUSDT", "ETH-USDT;1", "", "e" * 40])
async def test_api_trades_symbol_filter_refuses_what_cannot_be_a_symbol(
    server: RunningServer, value: str
) -> None:
    reply = await server.http.get("/api/v1/trades", params={"symbol": value})

    assert "symbol" in assert_error(reply, 422, "invalid_request")


# -- 6. /events?signal_id= filters, with after and limit ----------------------------------------------


async def test_api_events_filter_by_signal_id_with_after_and_limit(server: RunningServer) -> None:
    await place_signal(server, signal_body("followed"))
    await until_event(server, "followed", "entry_filled")  # a second event of that signal
    await place_signal(server, eth_signal("other"))
    await server.http.post("/api/v1/halt")

    def query(**params: Any) -> Any:
        return server.http.get("/api/v1/events", params={"signal_id": "followed", **params})

    every = (await query()).json()["events"]
    first = (await query(limit=1)).json()["events"]
    rest = (await query(after=every[0]["id"])).json()["events"]
    unknown = (await server.http.get("/api/v1/events", params={"signal_id": "never-sent"})).json()["events"]

    assert [event["type"] for event in every[:2]] == ["placed", "entry_filled"]
    assert {event["signal_id"] for event in every} == {"followed"}
    assert first == every[:1] and rest == every[1:]
    assert unknown == []


async def test_api_events_signal_id_filter_refuses_what_cannot_be_an_id(server: RunningServer) -> None:
    reply = await server.http.get("/api/v1/events", params={"signal_id": "a b"})

    assert "signal_id" in assert_error(reply, 422, "invalid_request")


def test_api_events_signal_id_filter_is_in_the_openapi() -> None:
    app = create_app(paper_settings(Path("/nonexistent-never-used")))
    names = [parameter["name"] for parameter in app.openapi()["paths"]["/api/v1/events"]["get"]["parameters"]]

    assert names == ["after", "limit", "signal_id"]


# -- 7. every rejection names its symbol once -------------------------------------------------------

def sol_signal(signal_id: str, **fields: Any) -> dict[str, Any]:
    """A market long on SOL-USDT (the model's mark is near 150)."""
    return signal_body(signal_id, symbol="SOL-USDT", stop_loss="140", take_profits=["160"], **fields)


REJECTED_KINDS = {  # the risk engine's rejection kinds, each driven through POST /signals
    "unknown_symbol": signal_body("r-unknown", symbol="NOPE-USDT"),
    "symbol_suspended": signal_body("r-suspended", symbol="LUNA-USDT", stop_loss="0.5", take_profits=["2"]),
    "entry_too_far": signal_body("r-far", symbol="LINK-USDT", stop_loss="1", take_profits=["100"]),
    "stop_already_crossed": signal_body("r-crossed", stop_loss="61000", take_profits=["70000"]),
    "target_crossed": signal_body("r-target", stop_loss="50000", take_profits=["59000"]),
    "signal_too_old": signal_body("r-old", posted_at="2020-01-01T00:00:00Z"),
    "invalid_signal": signal_body("r-twice", take_profits=["62000", "62000"]),
    "symbol_already_open": sol_signal("r-open"),  # "open-first" holds SOL-USDT
    "halted": eth_signal("r-halted"),  # after a halt
}


async def test_api_no_rejection_repeats_its_symbol(server: RunningServer) -> None:
    answers: dict[str, dict[str, Any]] = {}
    await place_signal(server, sol_signal("open-first"))
    for kind, body in REJECTED_KINDS.items():
        if kind == "halted":
            await server.http.post("/api/v1/halt")
        answers[kind] = (await server.http.post("/api/v1/signals", json=body)).json()
    feed = (await server.http.get("/api/v1/events", params={"limit": 500})).json()["events"]
    rejected = {event["signal_id"]: event for event in feed if event["type"] == "rejected"}

    for kind, answer in answers.items():
        symbol = REJECTED_KINDS[kind]["symbol"]
        event = rejected[answer["signal_id"]]
        assert answer["status"] == "rejected" and event["data"]["code"] == kind, (kind, answer, event)
        assert answer["reason"].startswith(f"{symbol}: ") and answer["reason"].count(symbol) == 1, answer
        assert event["message"].count(symbol) == 1, event["message"]
        assert event["message"].endswith(answer["reason"].removeprefix(f"{symbol}: ")), event["message"]


# -- 8. a halt that survived a restart is a WARNING at start -------------------------------------------


def start_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "hit_server.server" and record.levelno == logging.WARNING
    ]


async def test_api_start_warns_when_the_journal_says_halted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_server(paper_settings(tmp_path)) as first:
        halted = (await first.http.post("/api/v1/halt", json={"reason": "exchange outage"})).json()
    caplog.clear()

    with caplog.at_level(logging.WARNING, logger="hit_server"):
        async with running_server(paper_settings(tmp_path)) as restarted:
            still = (await restarted.http.get("/api/v1/stats")).json()["halted"]

    assert still is True
    warnings = start_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "HALTED" in warnings[0] and "exchange outage" in warnings[0]
    assert halted["since"][:19] in warnings[0]  # the first halt's time, to the second


async def test_api_start_does_not_warn_when_not_halted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_server(paper_settings(tmp_path)) as first:
        await first.http.post("/api/v1/halt", json={"reason": "brief"})
        await first.http.post("/api/v1/resume")
    caplog.clear()

    with caplog.at_level(logging.WARNING, logger="hit_server"):
        async with running_server(paper_settings(tmp_path)):
            pass

    assert start_warnings(caplog) == []
