"""Schema fuzzing of the trade actions (POST /api/v1/trades/{id}/close, /cancel, /stop, /targets) over a
journal and a paper exchange that hold real trades (open with targets, long and short, pending, closed), so
half the examples reach the actions' own checks and the exchange, not only the schema (the module-wide fuzz
in test_api_fuzz.py covers them on an empty journal). No 5xx, a documented status, a body matching its
schema, every non-2xx in the error shape."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from hit_server.server import create_app
from hit_server.testing import TEST_API_KEY, paper_settings, place_signal, running_server, signal_body

ACTIONS = "^/api/v1/trades/[^/]+/(close|cancel|stop|targets)$"
SIGNAL_IDS = ["fa-open-btc", "fa-open-eth", "fa-pending", "fa-closed"]


async def journal_with_trades(data_dir: Path) -> None:
    async with running_server(paper_settings(data_dir, monitor_poll_seconds=0.05)) as server:
        await place_signal(server, signal_body("fa-open-btc"))
        await place_signal(
            server,
            signal_body(
                "fa-open-eth",
                symbol="ETH-USDT",
                side="short",
                stop_loss="3100",
                take_profits=["2950", "2900"],
            ),
        )
        await place_signal(
            server,
            signal_body(
                "fa-pending", symbol="SOL-USDT", entries=["148"], stop_loss="140", take_profits=["160"]
            ),
        )
        await place_signal(
            server, signal_body("fa-closed", symbol="XRP-USDT", stop_loss="0.55", take_profits=["0.7"])
        )
        closed = await server.http.post("/api/v1/trades/fa-closed/close", headers={"Idempotency-Key": "fz-0"})
        assert closed.status_code == 200, closed.text


@pytest.fixture(scope="module")
def actions_schema(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data_dir = tmp_path_factory.mktemp("fuzz-actions")
    asyncio.run(journal_with_trades(data_dir))
    app = create_app(paper_settings(data_dir, rate_limit_per_minute=1_000_000))
    return schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex=ACTIONS)


def error_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    if response.status_code < 300:
        return None
    body = response.json()
    if set(body) != {"error"} or set(body["error"]) != {"code", "message"}:
        raise AssertionError(f"{response.status_code} outside the error shape: {body}")
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    error_shape,
]
KEYS = itertools.count(1)


def on_real_trades(case: Any) -> None:
    """One example in two acts on a trade that exists (each in turn); one in three carries a fresh
    Idempotency-Key (the others keep what schemathesis drew: none, a reused one, or an invalid one)."""
    n = next(KEYS)
    written = str((case.path_parameters or {}).get("signal_id", ""))
    if len(written) % 2 == 0:
        case.path_parameters["signal_id"] = SIGNAL_IDS[len(written) // 2 % len(SIGNAL_IDS)]
    if n % 3 == 0:
        case.headers = {**(case.headers or {}), "Idempotency-Key": f"fz-{n}"}


def test_trade_actions_fuzz_answers_within_the_contract(actions_schema: Any) -> None:
    operations = [result.ok() for result in actions_schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} == {
        f"POST /api/v1/trades/{{signal_id}}/{action}" for action in ("close", "cancel", "stop", "targets")
    }
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def fuzz(case: Any) -> None:
            on_real_trades(case)
            case.call_and_validate(headers={"X-API-Key": TEST_API_KEY}, checks=CHECKS)

        fuzz()
