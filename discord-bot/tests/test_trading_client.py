"""The trading client against the fake trading server on loopback: retries, deadline, typed outcomes."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from hit_bot.testing.fake_trading_server import FakeTradingServer
from hit_bot.testing.samples import API_KEY
from hit_bot.trading_client import (
    LASTING_503_CODES,
    Delivered,
    FeatureMissing,
    Refused,
    ServerRefused,
    ServerUnreachable,
    TradingClient,
    Unreachable,
)
from hit_shared.models import HaltRequest, Side, TradeSignal, TradeStatus

POSTED_AT = datetime.now(UTC)


@pytest.fixture(autouse=True)
def _posted_when_the_test_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's signals are posted as it starts: one time for the whole module grew older than the
    server's 300 s age limit when the suite ran long (a busy machine), and signals were refused."""
    monkeypatch.setitem(globals(), "POSTED_AT", datetime.now(UTC))


def make_signal(signal_id: str = "discord:1:2", stop: str = "58000") -> TradeSignal:
    return TradeSignal(signal_id=signal_id, side=Side.LONG, symbol="BTC-USDT", entries=(Decimal(60000),),
                       stop_loss=Decimal(stop), take_profits=(Decimal(65000),), posted_at=POSTED_AT)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def client_for(
    http: httpx.AsyncClient, url: str, key: str = API_KEY, deadline: float = 2.0, attempt_timeout: float = 2.0
) -> TradingClient:
    """A client with quick retries. Its attempts may take 2 s (a busy machine runs the suite: an events
    read, one attempt, timed out at 0.3 s under load); the hang test sets them short to see retries."""
    return TradingClient(http, url, key, deadline=deadline, attempt_timeout=attempt_timeout,
                         initial_backoff=0.01, max_backoff=0.05)


async def test_trading_client_submit_is_delivered_then_replayed(
    http: httpx.AsyncClient, trading_server: FakeTradingServer
) -> None:
    client = client_for(http, trading_server.url)
    first = await client.submit(make_signal())
    again = await client.submit(make_signal())
    assert isinstance(first, Delivered) and not first.replayed
    assert first.response.status is TradeStatus.PLACED and first.response.size == Decimal(1)
    assert isinstance(again, Delivered) and again.replayed and again.response == first.response
    assert len(trading_server.trades) == 1


async def test_trading_client_retries_5xx_and_429_with_the_same_body(
    http: httpx.AsyncClient, trading_server: FakeTradingServer
) -> None:
    trading_server.fail_next(2, status=500)
    trading_server.throttle_next(1, retry_after=0.2)
    started = time.monotonic()
    outcome = await client_for(http, trading_server.url).submit(make_signal())
    elapsed = time.monotonic() - started
    assert isinstance(outcome, Delivered) and outcome.response.status is TradeStatus.PLACED
    assert elapsed >= 0.2  # Retry-After was honoured
    assert [p for m, p in trading_server.requests if m == "POST"] == ["/api/v1/signals"] * 4
    assert len(trading_server.signal_attempts) == 1


async def test_trading_client_does_not_retry_other_4xx(
    http: httpx.AsyncClient, trading_server: FakeTradingServer
) -> None:
    client = client_for(http, trading_server.url)
    await client.submit(make_signal())
    conflict = await client.submit(make_signal(stop="57000"))
    wrong_key = await client_for(http, trading_server.url, key="wrong" * 8).submit(make_signal("x:1"))
    assert conflict == Refused(409, "signal_conflict",
                               "signal discord:1:2 was already received with a different body")
    assert isinstance(wrong_key, Refused) and wrong_key.status_code == 401
    assert len(trading_server.requests) == 3


@pytest.mark.parametrize("code", sorted(LASTING_503_CODES))
async def test_trading_client_shows_a_lasting_503_at_once_instead_of_calling_the_server_unreachable(
    http: httpx.AsyncClient, trading_server: FakeTradingServer, code: str
) -> None:
    # The exchange refuses the account (a revoked key, a missing permission, hedge mode): retrying for
    # the whole deadline changes nothing, and "unreachable" would send the trader looking at the wrong
    # thing. A passing 503 (the exchange briefly down) is still retried.
    trading_server.fail_next(1, status=503, code=code)
    outcome = await client_for(http, trading_server.url, deadline=5.0).submit(make_signal())
    assert isinstance(outcome, Refused) and (outcome.status_code, outcome.code) == (503, code)
    assert len(trading_server.requests) == 1
    trading_server.fail_next(1, status=503, code="exchange_unavailable")
    again = await client_for(http, trading_server.url).submit(make_signal("discord:1:3"))
    assert isinstance(again, Delivered)
    trading_server.fail_next(1, status=503, code=code)
    with pytest.raises(ServerRefused):
        await client_for(http, trading_server.url).health()


async def test_trading_client_gives_up_at_the_deadline_when_the_server_hangs(
    http: httpx.AsyncClient, trading_server: FakeTradingServer
) -> None:
    trading_server.hang_next(1000)
    started = time.monotonic()
    client = client_for(http, trading_server.url, deadline=0.8, attempt_timeout=0.3)
    outcome = await client.submit(make_signal())
    elapsed = time.monotonic() - started
    assert isinstance(outcome, Unreachable) and "did not answer within 0.8 s" in outcome.reason
    # gives up at its deadline: well before the 1,000 hung attempts (a margin for a busy machine)
    assert 0.7 < elapsed < 4.0
    assert len(trading_server.requests) >= 2  # attempts timed out and were retried


async def test_trading_client_unreachable_when_nothing_listens(http: httpx.AsyncClient) -> None:
    outcome = await client_for(http, "http://127.0.0.1:9", deadline=0.3).submit(make_signal())
    assert isinstance(outcome, Unreachable) and "could not connect" in outcome.reason
    with pytest.raises(ServerUnreachable):
        await client_for(http, "http://127.0.0.1:9", deadline=0.3).health()


async def test_trading_client_typed_calls_and_errors_hold_no_secret(
    http: httpx.AsyncClient, trading_server: FakeTradingServer
) -> None:
    client = client_for(http, trading_server.url)
    assert (await client.health()).max_signal_age_seconds == 300
    assert (await client.halt(HaltRequest(reason="test"))).halted
    assert (await client.stats()).halted
    assert not (await client.resume()).halted
    trading_server.add_event("placed", "BTC placed", "discord:1:2")
    events = await client.events(None)
    seen = [(e.id, e.type, e.signal_id, e.message) for e in events]
    assert seen == [(1, "placed", "discord:1:2", "BTC placed")]
    assert await client.events(1) == ()
    trading_server.events_enabled = False
    with pytest.raises(FeatureMissing):
        await client.events(1)
    bad_key = "bad-key-" + "z" * 30
    with pytest.raises(ServerRefused) as refused:
        await client_for(http, trading_server.url, key=bad_key).stats()
    assert refused.value.status_code == 401 and bad_key not in str(refused.value)
