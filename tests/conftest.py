"""Fixtures for end-to-end and fault tests: the real services as real processes on 127.0.0.1.

- `procs`: every process a test starts; each one's output goes to a file in tmp, is stopped at the end
  (terminate, then kill), and the tail of every output is attached to the report of a failed test.
- `sim`: `python -m hit_server.blofin_sim` on a free port with random credentials (rate limits off, so
  the server's own client-side limiter is what paces it), plus its /sim/ control API.
- `start_server(db_path, **env)`: `python -m hit_server` in demo mode against that simulator.
- `fake_discord`: a FakeDiscord served from the test's own event loop.
- `start_bot(server, state_dir)`: `python -m hit_bot` against the fake Discord and a server.
- `system`: all of it together, the bot connected.

Waits are bounded polls (`wait_for`), never fixed long sleeps.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from hit_bot.testing.fake_discord import FakeDiscord
from hit_bot.testing.samples import TOKEN
from hit_server.testing import clean_env, free_port
from hit_server.trading import ids

ROOT = Path(__file__).resolve().parents[1]


async def wait_for(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool], within: float, what: str, every: float = 0.05
) -> None:
    """Poll `check` until it holds; fail the test naming `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(every)


class Proc:
    """One child process, its stdout and stderr written to `log_path`."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path, cwd: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        with self.log_path.open("ab") as out:
            out.write(f"---- start {self.name} ----\n".encode())
            out.flush()
            self.popen = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=out,
                                          stderr=subprocess.STDOUT)
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def kill9(self) -> None:
        """SIGKILL: no cleanup, no flush, like a crash or a power cut."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self, grace: float = 10.0) -> int | None:
        """Terminate, then kill if it does not end within `grace` seconds. Returns the exit code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        return self.popen.returncode


@dataclass
class Procs:
    """The processes of one test; stopped at its end."""

    tmp: Path
    started: list[Proc] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Proc:
        proc = Proc(name, argv, env, self.tmp / f"{name}.log", self.tmp).start()
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            proc.stop()

    def tails(self) -> str:
        return "\n".join(f"==== {p.name} ({p.log_path}) ====\n{p.tail()}" for p in self.started)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    procs: Procs | None = getattr(item, "hit_procs", None)
    if report.failed and procs is not None and procs.started:
        report.sections.append(("output of the processes (tails)", procs.tails()))


@pytest.fixture
def postgres_url() -> str:
    """The run's PostgreSQL (HIT_TEST_POSTGRES_URL, started by ./run.sh test). Missing in CI is a failure,
    never a skip; elsewhere the test is skipped."""
    url = os.environ.get("HIT_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("./run.sh test starts PostgreSQL in CI, yet HIT_TEST_POSTGRES_URL is not set")
        pytest.skip("no PostgreSQL: run ./run.sh test")
    return url


@pytest.fixture
def procs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Procs]:
    registry = Procs(tmp_path)
    request.node.hit_procs = registry
    try:
        yield registry
    finally:
        registry.stop_all()


async def wait_http(proc: Proc, url: str, within: float = 30.0) -> None:
    """Until `url` answers 200; fails at once (with the output's tail) if the process exits."""
    async with httpx.AsyncClient(timeout=2) as http:
        deadline = time.monotonic() + within
        while True:
            if not proc.alive:
                pytest.fail(f"{proc.name} exited before serving {url}:\n{proc.tail()}")
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{proc.name} did not serve {url} within {within:.0f}s:\n{proc.tail()}")
            await asyncio.sleep(0.05)


# ---- the simulator ------------------------------------------------------------------------------


@dataclass
class SimProcess:
    proc: Proc
    port: int
    api_key: str
    api_secret: str
    passphrase: str
    http: httpx.AsyncClient

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def state(self) -> SimState:
        reply = await self.http.get("/sim/state")
        reply.raise_for_status()
        return SimState(reply.json()["data"])

    async def fault(self, kind: str, **fields: Any) -> None:
        reply = await self.http.post("/sim/faults", json={"kind": kind, **fields})
        assert reply.json()["code"] == "0", reply.text

    async def random_faults(self, probability: float, kinds: list[str], **fields: Any) -> None:
        body = {"probability": probability, "kinds": kinds, **fields}
        reply = await self.http.post("/sim/faults/random", json=body)
        assert reply.json()["code"] == "0", reply.text

    async def clear_faults(self) -> None:
        (await self.http.delete("/sim/faults")).raise_for_status()

    async def set_price(self, inst_id: str, price: Decimal) -> None:
        reply = await self.http.post("/sim/price", json={"instId": inst_id, "price": str(price)})
        assert reply.json()["code"] == "0", reply.text


@pytest.fixture
async def sim(procs: Procs) -> AsyncIterator[SimProcess]:
    port = free_port()
    key, secret, phrase = (f"sim-{secrets.token_hex(12)}", secrets.token_urlsafe(24),
                           secrets.token_urlsafe(12))
    argv = [sys.executable, "-m", "hit_server.blofin_sim", "--host", "127.0.0.1", "--port", str(port),
            f"--api-key={key}", f"--api-secret={secret}", f"--passphrase={phrase}",  # may start with "-"
            "--rate-limit-per-min", "0", "--trade-limit-per-10s", "0"]
    proc = procs.start("simulator", argv, clean_env())
    await wait_http(proc, f"http://127.0.0.1:{port}/sim/state")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        yield SimProcess(proc, port, key, secret, phrase, http)


# ---- the trading server -------------------------------------------------------------------------


@dataclass
class ServerProcess:
    proc: Proc
    port: int
    key: str
    db_path: Path
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, timeout: float = 30.0) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers={"X-API-Key": self.key}, timeout=timeout)


ServerStarter = Callable[..., Awaitable[ServerProcess]]


def server_env(
    sim: SimProcess, key: str, db_url: str, port: int, data_dir: Path, **extra: str
) -> dict[str, str]:
    values = {
        "TRADING_MODE": "demo", "BLOFIN_BASE_URL": sim.url, "BLOFIN_API_KEY": sim.api_key,
        "BLOFIN_API_SECRET": sim.api_secret, "BLOFIN_PASSPHRASE": sim.passphrase, "API_KEYS": key,
        "DATABASE_URL": db_url, "DATA_DIR": str(data_dir), "HOST": "127.0.0.1", "PORT": str(port),
        "MAX_OPEN_POSITIONS": "50", "RATE_LIMIT_PER_MINUTE": "100000", "LOG_LEVEL": "INFO",
    }
    values.update(extra)
    return clean_env(**values)


@pytest.fixture
def start_server(procs: Procs, sim: SimProcess, tmp_path: Path) -> ServerStarter:
    """`await start_server(db_path=None, port=None, key=None, name="server", database_url=None, **env)`.

    Start it again with the same `db_path`, `port` and `key` to restart it on the same journal."""

    async def start(db_path: Path | None = None, *, port: int | None = None, key: str | None = None,
                    name: str = "server", database_url: str | None = None, **env: str) -> ServerProcess:
        db_path = db_path or tmp_path / "journal.db"
        port = port or free_port()
        key = key or secrets.token_urlsafe(30)[:40]
        url = database_url or f"sqlite:///{db_path}"
        values = server_env(sim, key, url, port, tmp_path / "server-data", **env)
        proc = procs.start(name, [sys.executable, "-m", "hit_server"], values)
        await wait_http(proc, f"http://127.0.0.1:{port}/health")
        return ServerProcess(proc, port, key, db_path, values)

    return start


# ---- Discord and the bot ------------------------------------------------------------------------


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(TOKEN) as fake:
        yield fake


BotStarter = Callable[..., Awaitable[Proc]]


@pytest.fixture
def start_bot(procs: Procs, fake_discord: FakeDiscord, tmp_path: Path) -> BotStarter:
    """`await start_bot(server, state_dir=None, name="bot", **env)`: returns once the bot is connected
    and its ready handlers (backfill) have been started."""
    empty_env_file = tmp_path / "bot-none.env"
    empty_env_file.write_text("")

    async def start(server: ServerProcess, state_dir: Path | None = None, *, name: str = "bot",
                    **env: str) -> Proc:
        values = clean_env(
            DISCORD_TOKEN=TOKEN, DISCORD_CHANNEL_IDS=str(fake_discord.channel("signals")),
            ALLOWED_ROLE_IDS=str(fake_discord.world.roles["Trader"]),
            DISCORD_API_BASE=fake_discord.api_base, DISCORD_GATEWAY_URL=fake_discord.gateway_url,
            TRADING_SERVER_URL=server.url, TRADING_SERVER_API_KEY=server.key,
            STATE_DIR=str(state_dir or tmp_path / "bot-state"), GUILD_READY_TIMEOUT="0.2",
            SYNC_SLASH_COMMANDS="false", TRADING_DEADLINE_SECONDS="30", LOG_LEVEL="INFO", **env,
        )
        proc = procs.start(name, [sys.executable, "-m", "hit_bot", "--env-file", str(empty_env_file)], values)
        marker = "connected as"
        seen = proc.output().count(marker)

        def connected() -> bool:
            if not proc.alive:
                pytest.fail(f"{name} exited:\n{proc.tail()}")
            return proc.output().count(marker) > seen and fake_discord.connected

        await wait_for(connected, 30, f"{name} to connect to the fake Discord")
        return proc

    return start


@dataclass
class System:
    sim: SimProcess
    server: ServerProcess
    discord: FakeDiscord
    bot: Proc
    wait_for: Waiter = wait_for


@pytest.fixture
async def system(
    sim: SimProcess, start_server: ServerStarter, fake_discord: FakeDiscord, start_bot: BotStarter
) -> System:
    server = await start_server()
    bot = await start_bot(server)
    return System(sim, server, fake_discord, bot)


# ---- what tests check at the simulator ----------------------------------------------------------


@dataclass
class SimState:
    """GET /sim/state, with the checks the tests make on it (`data` is the raw answer)."""

    data: dict[str, Any]

    @property
    def orders(self) -> list[dict[str, Any]]:
        return list(self.data["orders"])

    @property
    def positions(self) -> list[dict[str, Any]]:
        return [p for p in self.data["positions"] if Decimal(p["positions"]) != 0]

    def order(self, client_order_id: str) -> dict[str, Any] | None:
        return next((o for o in self.data["orders"] if o["clientOrderId"] == client_order_id), None)

    def position_size(self, inst_id: str) -> Decimal:
        return sum((abs(Decimal(p["positions"])) for p in self.positions if p["instId"] == inst_id),
                   Decimal(0))

    def entry_orders(self, signal_id: str) -> list[dict[str, Any]]:
        """The entry orders of one signal (clientOrderIds derived from its signal_id)."""
        prefix = ids.signal_prefix(signal_id)
        return [o for o in self.data["orders"] if o["clientOrderId"].startswith(prefix)
                and o["clientOrderId"][len(prefix):].startswith("e")]

    def duplicate_client_ids(self) -> list[str]:
        seen: set[str] = set()
        doubled = []
        for order in [*self.data["orders"], *self.data["tpslOrders"]]:
            cid = order["clientOrderId"]
            if cid and cid in seen:
                doubled.append(cid)
            seen.add(cid)
        return doubled

    def naked_positions(self) -> list[str]:
        """Open positions without a live TP/SL order whose stop covers the whole position."""
        naked = []
        for pos in self.positions:
            size = abs(Decimal(pos["positions"]))
            covering = [t for t in self.data["tpslOrders"]
                        if t["instId"] == pos["instId"] and t["state"] == "live" and t["slTriggerPrice"]
                        and (t["size"] == "-1" or Decimal(t["size"]) >= size)]
            if not covering:
                naked.append(f"{pos['instId']} {pos['positions']}")
        return naked


Waiter = Callable[..., Awaitable[None]]


@pytest.fixture(name="wait_for")
def wait_for_fixture() -> Waiter:
    """`await wait_for(check, within, what)`: see `wait_for` in this module."""
    return wait_for


# ---- signals over HTTP --------------------------------------------------------------------------


def market_signal(signal_id: str, symbol: str) -> dict[str, Any]:
    """A long at market with a stop 3% under the simulator's starting price and two targets."""
    from hit_server.blofin_sim.catalog import starting_prices

    price = starting_prices()[symbol]
    return {"signal_id": signal_id, "side": "long", "symbol": symbol, "entries": [],
            "stop_loss": str(price * Decimal("0.97")),
            "take_profits": [str(price * Decimal("1.02")), str(price * Decimal("1.04"))]}


def trading_symbols() -> list[str]:
    """The simulator's first sixteen symbols, the ones the fault suites were sized for (one signal
    each; the paper catalogue's other rows would only make every burst longer)."""
    from hit_server.blofin_sim.catalog import FIRST_SYMBOLS

    return sorted(FIRST_SYMBOLS)


@dataclass
class Signals:
    """Helpers for tests that post signals over HTTP (exposed as the `signals` fixture)."""

    market: Callable[[str, str], dict[str, Any]] = market_signal
    symbols: Callable[[], list[str]] = trading_symbols

    @staticmethod
    async def post_until_answered(
        http: httpx.AsyncClient, body: dict[str, Any], within: float = 30.0
    ) -> httpx.Response:
        """POST it (same signal_id, same body) until the server gives a stored answer (200/201);
        503s and connection errors are retried, any other status is returned as is."""
        deadline = time.monotonic() + within
        while True:
            try:
                reply = await http.post("/api/v1/signals", json=body)
                if reply.status_code != 503:
                    return reply
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"no stored answer for {body['signal_id']} within {within:.0f}s")
            await asyncio.sleep(0.2)


@pytest.fixture
def signals() -> Signals:
    return Signals()
