"""The retry layer (`blofin_rest.RetryPolicy`, on tenacity): how often, how long and how far apart a
request is tried again, and that a write whose outcome is unclear is never tried again by it.

The policies here run on a fake clock that only the injected sleep (and a slow call) moves, so the
bounds are exact and nothing waits for real.
"""

import asyncio
import logging
import random
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from hit_server.exchange.blofin_errors import ExchangeUnavailable, RateLimited
from hit_server.exchange.blofin_rest import RetryPolicy
from hit_server.simulation.clock import run_virtual

ORDER_PATH = "/api/v1/trade/order"
ORDER_BODY = {"instId": "BTC-USDT", "side": "buy", "orderType": "market", "size": "1",
              "marginMode": "cross", "clientOrderId": "retry1"}


@dataclass
class FakeTime:
    """A clock that moves only when something sleeps on it, recording each wait."""

    now: float = 0.0
    waits: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def policy(self, **settings: Any) -> RetryPolicy:
        return RetryPolicy(sleep=self.sleep, clock=self.clock, **settings)


def always(error: Exception, tries: list[int], fake: FakeTime | None = None, takes: float = 0.0):
    """A call that fails with `error` every time, counting its tries, each taking `takes` seconds."""

    async def call() -> None:
        tries.append(len(tries) + 1)
        if fake is not None:
            fake.now += takes
        raise error

    return call


def is_rate_limit(exc: BaseException) -> bool:
    return isinstance(exc, RateLimited)


async def test_retry_policy_stops_after_its_attempts_and_raises_the_last_error() -> None:
    fake = FakeTime()
    tries: list[int] = []
    with pytest.raises(RateLimited, match="busy"):
        await fake.policy(attempts=3).run(always(RateLimited("busy"), tries), is_rate_limit)
    assert tries == [1, 2, 3]
    assert len(fake.waits) == 2  # a wait between tries, none after the last


async def test_retry_policy_stops_once_its_time_budget_is_spent() -> None:
    fake = FakeTime()
    tries: list[int] = []
    policy = fake.policy(attempts=50, initial_wait=1, max_wait=1, jitter=0, max_total=5)
    with pytest.raises(RateLimited):
        await policy.run(always(RateLimited("busy"), tries, fake, takes=1.0), is_rate_limit)
    # try 1 ends at 1 s, wait to 2; try 2 ends at 3, wait to 4; try 3 ends at 5: the budget is spent
    assert tries == [1, 2, 3]
    assert fake.now == 5.0


def test_retry_policy_budget_runs_on_the_event_loops_clock_by_default() -> None:
    """In the whole-system simulation the loop's clock is virtual: requests that time out there must
    spend the budget as they would for real, although no real time passes."""
    tries: list[int] = []

    async def times_out() -> None:
        tries.append(len(tries) + 1)
        await asyncio.sleep(4)  # virtual seconds: a request that hangs until its timeout
        raise ExchangeUnavailable("no reply", code="timeout")

    async def main() -> None:
        policy = RetryPolicy(attempts=50, initial_wait=1, max_wait=1, jitter=0, max_total=10)
        await policy.run(times_out, lambda exc: isinstance(exc, ExchangeUnavailable))

    with pytest.raises(ExchangeUnavailable):
        run_virtual(main())
    assert tries == [1, 2, 3]  # ends at 4, 9 and 14 virtual seconds


@pytest.mark.parametrize(("retry_after", "expected_wait"), [(5.0, 5.0), (0.1, 0.25), (None, 0.25)])
async def test_retry_policy_waits_at_least_the_retry_after_it_is_given(retry_after, expected_wait) -> None:
    fake = FakeTime()
    tries: list[int] = []
    error = RateLimited("slow down", retry_after=retry_after)
    with pytest.raises(RateLimited):
        await fake.policy(attempts=2, jitter=0).run(always(error, tries), is_rate_limit)
    assert fake.waits == [expected_wait]  # the longer of Retry-After and the backoff (0.25 s first)


async def test_client_write_refused_with_429_is_sent_again_after_its_retry_after(client_mock, client_sleeps):
    posts: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        posts.append(request)
        if len(posts) == 1:
            return httpx.Response(429, text="slow down", headers={"Retry-After": "3"})
        return httpx.Response(200, json={"code": "0", "msg": "", "data": [{"orderId": "1", "code": "0"}]})

    client = client_mock(handler)
    await client.rest.write("POST", ORDER_PATH, body=ORDER_BODY)
    assert len(posts) == 2  # a 429 proves the order was not placed: safe to send again
    assert client_sleeps.waits == [3.0]


@pytest.mark.parametrize("kind", ["http_503", "http_500", "connection_lost", "timeout"])
async def test_client_write_with_unclear_outcome_is_raised_for_the_lookup_never_resent(
    client_mock, client_sleeps, kind
):
    posts: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        posts.append(request)
        if kind == "connection_lost":
            raise httpx.ReadError("connection reset", request=request)
        if kind == "timeout":
            await asyncio.sleep(5)  # far past the client's request_timeout below: cancelled by it
        status = 500 if kind == "http_500" else 503
        return httpx.Response(status, text="unavailable", headers={"Retry-After": "1"})

    client = client_mock(handler, request_timeout=0.05)
    with pytest.raises(ExchangeUnavailable) as caught:
        await client.rest.write("POST", ORDER_PATH, body=ORDER_BODY)
    assert caught.value.request_sent  # what `settle_write` looks up by clientOrderId
    assert len(posts) == 1
    assert client_sleeps.waits == []


async def test_client_write_that_never_left_is_sent_again(client_mock, client_sleeps):
    posts: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        posts.append(request)
        if len(posts) < 3:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"code": "0", "msg": "", "data": [{"orderId": "1", "code": "0"}]})

    client = client_mock(handler)
    await client.rest.write("POST", ORDER_PATH, body=ORDER_BODY)
    assert len(posts) == 3
    assert len(client_sleeps.waits) == 2


async def test_retry_policy_jitter_stays_within_its_bounds() -> None:
    random.seed(13)
    fake = FakeTime()
    policy = fake.policy(attempts=6, initial_wait=0.25, max_wait=2.0, jitter=0.25, max_total=1000)
    for _ in range(40):
        with pytest.raises(RateLimited):
            await policy.run(always(RateLimited("busy"), []), is_rate_limit)
    floors = [0.25, 0.5, 1.0, 2.0, 2.0]  # initial, 2x, 4x, then capped at max_wait
    runs = [fake.waits[start:start + 5] for start in range(0, len(fake.waits), 5)]
    assert len(runs) == 40
    for waits in runs:
        assert all(floor <= wait <= floor + 0.25 for floor, wait in zip(floors, waits, strict=True))
    firsts = [waits[0] for waits in runs]
    assert max(firsts) - min(firsts) > 0.1  # the jitter is really drawn, not a constant


async def test_retry_policy_logs_each_failed_attempt_it_retries(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="hit_server.exchange.blofin_rest")
    fake = FakeTime()
    with pytest.raises(RateLimited):
        await fake.policy(attempts=3).run(always(RateLimited("busy"), []), is_rate_limit)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    for number, message in enumerate(messages, start=1):
        assert message.startswith(f"BloFin request failed (attempt {number}): RateLimited(")
        assert message.endswith("; retrying")


async def test_client_read_answered_503_waits_its_retry_after(client_mock, client_sleeps):
    gets: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        gets.append(request)
        if len(gets) == 1:
            return httpx.Response(503, text="maintenance", headers={"Retry-After": "4"})
        return httpx.Response(200, json={"code": "0", "msg": "", "data": []})

    client = client_mock(handler)
    assert await client.rest.read("GET", "/api/v1/account/positions") == []
    assert len(gets) == 2
    assert client_sleeps.waits == [4.0]  # the exchange asked for 4 s; the backoff alone would be shorter
