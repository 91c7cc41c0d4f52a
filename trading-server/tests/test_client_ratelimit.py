"""The client-side rate limiter on fake time: sleeping advances the clock, nothing really waits."""

import asyncio

import pytest

from hit_server.exchange.ratelimit import ARRIVAL_MARGIN_S, RateLimiter, SlidingWindow


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)  # as a real sleep does, let the other tasks run


def make_limiter(fake: FakeTime, **limits: int) -> RateLimiter:
    return RateLimiter(clock=fake.clock, sleep=fake.sleep, **limits)


async def test_window_lets_limit_requests_through_without_waiting():
    fake = FakeTime()
    window = SlidingWindow(3, 10.0, clock=fake.clock, sleep=fake.sleep)
    waits = [await window.acquire() for _ in range(3)]
    assert waits == [0.0, 0.0, 0.0]
    assert fake.sleeps == []


async def test_window_waits_until_oldest_request_leaves_the_period():
    fake = FakeTime()
    window = SlidingWindow(3, 10.0, clock=fake.clock, sleep=fake.sleep)
    for _ in range(3):
        await window.acquire()
        fake.now += 1.0
    waited = await window.acquire()
    assert waited == pytest.approx(7.0)
    assert fake.now == pytest.approx(1010.0)


async def test_window_never_allows_more_than_limit_in_any_period():
    fake = FakeTime()
    window = SlidingWindow(5, 10.0, clock=fake.clock, sleep=fake.sleep)
    sent: list[float] = []
    for i in range(40):
        await window.acquire()
        sent.append(fake.now)
        fake.now += 0.3 * (i % 4)
    for start in sent:
        assert sum(1 for t in sent if start <= t < start + 10.0) <= 5


async def test_window_with_zero_limit_is_unlimited():
    fake = FakeTime()
    window = SlidingWindow(0, 10.0, clock=fake.clock, sleep=fake.sleep)
    for _ in range(1000):
        assert await window.acquire() == 0.0


def test_window_rejects_nonsense_settings():
    with pytest.raises(ValueError, match="limit"):
        SlidingWindow(-1, 10.0)
    with pytest.raises(ValueError, match="period"):
        SlidingWindow(5, 0)


async def test_limiter_applies_trade_limit_to_every_trade_endpoint_reads_included():
    """BloFin's 30 per 10 s covers its trading APIs, lookups under /api/v1/trade/ as well as orders (the
    simulator counts them so): a read there spends the budget, a read elsewhere does not."""
    fake = FakeTime()
    limiter = make_limiter(fake, trade_per_10s=30)
    for _ in range(20):
        assert await limiter.acquire("POST", "/api/v1/trade/order") == 0.0
    for _ in range(10):
        assert await limiter.acquire("GET", "/api/v1/trade/orders-pending") == 0.0
    for _ in range(50):
        assert await limiter.acquire("GET", "/api/v1/account/positions") == 0.0
    assert await limiter.acquire("POST", "/api/v1/account/set-leverage") == 0.0
    waited = await limiter.acquire("GET", "/api/v1/trade/orders-tpsl-pending")
    assert waited == pytest.approx(10.0 + ARRIVAL_MARGIN_S)


async def test_limiter_applies_overall_limit_per_minute():
    fake = FakeTime()
    limiter = make_limiter(fake, per_minute=500)
    for _ in range(500):
        await limiter.acquire("GET", "/api/v1/market/tickers")
    assert fake.sleeps == []
    assert await limiter.acquire("GET", "/api/v1/market/tickers") == pytest.approx(60.0 + ARRIVAL_MARGIN_S)


async def test_limiter_applies_five_minute_limit():
    fake = FakeTime()
    limiter = make_limiter(fake, per_minute=500, per_5_minutes=1500)
    for _ in range(1501):
        await limiter.acquire("GET", "/api/v1/account/balance")
    # 3 full minutes of 500, then the 1501st must wait for the first to be 300 s old
    assert fake.now - 1000.0 == pytest.approx(300.0 + ARRIVAL_MARGIN_S)


async def test_limiter_serves_concurrent_callers_without_breaking_the_trade_limit():
    fake = FakeTime()
    limiter = make_limiter(fake, trade_per_10s=30)
    sent: list[float] = []

    async def place() -> None:
        await limiter.acquire("POST", "/api/v1/trade/order")
        sent.append(fake.now)

    await asyncio.gather(*(place() for _ in range(95)))
    assert len(sent) == 95
    for start in sent:
        assert sum(1 for t in sent if start <= t < start + 10.0 + ARRIVAL_MARGIN_S) <= 30  # jitter-proof
    assert max(sent) - min(sent) == pytest.approx(3 * (10.0 + ARRIVAL_MARGIN_S))


async def test_limiter_unlimited_never_waits():
    limiter = RateLimiter.unlimited()
    waits = [await limiter.acquire("POST", "/api/v1/trade/order") for _ in range(200)]
    assert sum(waits) == 0.0


async def test_a_request_counts_until_a_period_after_its_answer_not_after_it_left():
    """BloFin counts a request from its arrival, somewhere between our send and its answer: a request
    that took 30 s (a connection pool, a starved process, the network) holds its slot until a minute
    after its answer."""
    fake = FakeTime()
    limiter = make_limiter(fake, per_minute=2)
    answered = asyncio.Event()
    sent = asyncio.Event()

    async def slow() -> None:
        async with limiter.sending("GET", "/api/v1/account/balance"):
            sent.set()
            await answered.wait()

    slow_task = asyncio.create_task(slow())
    await sent.wait()  # t=1000: in flight
    assert await limiter.acquire("GET", "/api/v1/market/tickers") == 0.0  # t=1000, answered at once
    fake.now += 30.0
    answered.set()
    await slow_task  # its answer at t=1030
    # the third waits for the instant one (t=1000) to leave the window
    assert await limiter.acquire("GET", "/api/v1/market/tickers") == pytest.approx(30.0 + ARRIVAL_MARGIN_S)
    # the fourth waits for the slow one: counted from its answer at 1030, not from 1000
    await limiter.acquire("GET", "/api/v1/market/tickers")
    assert fake.now == pytest.approx(1030.0 + 60.0 + ARRIVAL_MARGIN_S)


async def test_requests_all_in_flight_hold_the_window_until_one_is_answered():
    fake = FakeTime()
    limiter = make_limiter(fake, trade_per_10s=2)
    release = asyncio.Event()
    both_inside = asyncio.Event()
    inside = 0
    answered: list[float] = []

    async def hold() -> None:
        nonlocal inside
        async with limiter.sending("POST", "/api/v1/trade/order"):
            inside += 1
            if inside == 2:
                both_inside.set()
            await release.wait()
        answered.append(fake.now)

    async def third() -> float:
        await limiter.acquire("POST", "/api/v1/trade/order")
        return fake.now

    holders = [asyncio.create_task(hold()) for _ in range(2)]
    await both_inside.wait()
    waiting = asyncio.create_task(third())
    for _ in range(20):  # it looks again and again on fake time while both are in flight
        await asyncio.sleep(0)
    assert not waiting.done()
    release.set()
    sent_at = await waiting
    await asyncio.gather(*holders)
    assert sent_at >= min(answered) + 10.0 + ARRIVAL_MARGIN_S


@pytest.mark.parametrize("seed", range(20))
def test_blofin_never_counts_more_than_the_limit_whatever_the_delays(seed: int) -> None:
    """Seeded, replayable: requests leave whenever the window lets them, each meets a random delay before
    it arrives at BloFin (0-20 s: a pool wait, a starved process) and another before its answer; in no
    minute does BloFin see more than the limit arrive."""
    import heapq
    import random

    rng = random.Random(seed)
    limit, period = 20, 60.0
    window = SlidingWindow(limit, period + ARRIVAL_MARGIN_S)
    arrivals: list[float] = []
    answers: list[float] = []  # a heap of the in-flight requests' answer times
    now = 0.0
    while now < 600.0:
        while answers and answers[0] <= now:
            window.end(heapq.heappop(answers))
        if window.wait_needed(now) == 0.0 and rng.random() < 0.7:
            window.begin()
            arrive = now + rng.choice([0.0, 0.05, rng.uniform(0, 20.0)])
            arrivals.append(arrive)
            heapq.heappush(answers, arrive + rng.choice([0.0, 0.05, rng.uniform(0, 5.0)]))
        now += rng.choice([0.0, 0.01, 0.5, rng.uniform(0, 10.0)])
    arrivals.sort()
    assert len(arrivals) > 3 * limit  # the windows were used, many times over
    for i, start in enumerate(arrivals):
        seen = sum(1 for at in arrivals[i:] if at < start + period)
        assert seen <= limit, f"BloFin saw {seen} requests within a minute from t={start:.2f}"
