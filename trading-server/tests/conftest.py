"""Shared fixtures. Client fixtures are named `client_*` (the BloFin client's tests own them)."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from hit_server.blofin_sim import Simulator, create_app
from hit_server.blofin_sim.testing import make_auth, make_config, sim_http
from hit_server.exchange.blofin_auth import BloFinAuth, Credentials
from hit_server.exchange.blofin_client import BloFinClient
from hit_server.exchange.blofin_rest import RetryPolicy
from hit_server.exchange.ratelimit import RateLimiter
from hit_server.journal.db import Database
from hit_server.testing import UvicornThread

CLIENT_API_KEY = "client-test-key-0123456789abcdef"
CLIENT_SECRET = "client-SECRET-never-shown-9f8e7d6c5b4a"
CLIENT_PASSPHRASE = "client-PASSPHRASE-never-shown-42"
DEMO_VARS = ("BLOFIN_DEMO_API_KEY", "BLOFIN_DEMO_API_SECRET", "BLOFIN_DEMO_PASSPHRASE")
DEMO_URL = "https://demo-trading-openapi.blofin.com"


@pytest.fixture
def client_credentials() -> Credentials:
    return Credentials(CLIENT_API_KEY, SecretStr(CLIENT_SECRET), SecretStr(CLIENT_PASSPHRASE))


@dataclass
class ClientSleeps:
    """A retry sleep that records the waits and returns at once."""

    waits: list[float]

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def client_sleeps() -> ClientSleeps:
    return ClientSleeps([])


@pytest.fixture
def client_retry(client_sleeps: ClientSleeps) -> RetryPolicy:
    return RetryPolicy(sleep=client_sleeps)


@pytest.fixture
async def client_mock(
    client_credentials: Credentials, client_retry: RetryPolicy
) -> AsyncIterator[Callable[..., BloFinClient]]:
    """A factory: `client_mock(handler, **client_kwargs)` -> a client over `httpx.MockTransport`."""
    opened: list[httpx.AsyncClient] = []

    def make(handler: Callable[[httpx.Request], Any], **kwargs: Any) -> BloFinClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="https://blofin.test")
        opened.append(http)
        kwargs.setdefault("retry", client_retry)
        kwargs.setdefault("rate_limiter", RateLimiter.unlimited())
        return BloFinClient(http, BloFinAuth(client_credentials), **kwargs)

    yield make
    for http in opened:
        await http.aclose()


# -- the simulator, over ASGI or a real loopback port -------------------------------------------


@dataclass
class ClientTarget:
    """What a contract test talks to: a client, plus the simulator's engine and control API."""

    name: str
    client: BloFinClient
    auth: BloFinAuth
    http: httpx.AsyncClient
    sim: Any | None  # app.state.sim, None against BloFin's demo

    async def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call the simulator's unsigned /sim/* API."""
        response = await self.http.request(method, path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    async def set_price(self, inst_id: str, price: Decimal) -> None:
        await self.control("POST", "/sim/price", {"instId": inst_id, "price": str(price)})

    async def fault(self, kind: str, *, count: int = 1, path: str | None = None, **extra: Any) -> None:
        body: dict[str, Any] = {"kind": kind, "count": count, **extra}
        if path:
            body["path"] = path
        await self.control("POST", "/sim/faults", body)


def client_sim_config(**overrides: Any) -> Any:
    from hit_server.blofin_sim.testing import make_config

    return make_config(api_key=CLIENT_API_KEY, api_secret=CLIENT_SECRET, passphrase=CLIENT_PASSPHRASE,
                       **overrides)


@pytest.fixture(
    params=["asgi", "uvicorn", pytest.param("demo", marks=pytest.mark.blofin_demo)],
)
def client_transport(request: pytest.FixtureRequest) -> str:
    """The transport a contract test runs over: ASGI in-process, real loopback uvicorn, or demo."""
    name: str = request.param
    if name == "demo":
        missing = [var for var in DEMO_VARS if not os.environ.get(var)]
        if missing or os.environ.get("CI"):
            pytest.skip(f"BloFin demo run is opt-in: set {', '.join(DEMO_VARS)} (never in CI)")
    return name


@pytest.fixture
def client_request_timeout() -> float:
    """The client's own per-request timeout in the sim-backed tests; a test module may override it."""
    return 2.0


@pytest.fixture
def client_sim_overrides() -> dict[str, Any]:
    """SimConfig overrides; a test module may override this fixture."""
    return {}


@pytest.fixture
async def client_target(
    client_transport: str, client_retry: RetryPolicy, client_sim_overrides: dict[str, Any],
    client_request_timeout: float,
) -> AsyncIterator[ClientTarget]:
    if client_transport == "demo":
        creds = Credentials(
            os.environ[DEMO_VARS[0]], SecretStr(os.environ[DEMO_VARS[1]]), SecretStr(os.environ[DEMO_VARS[2]])
        )
        async with httpx.AsyncClient(base_url=DEMO_URL) as http:
            auth = BloFinAuth(creds)
            yield ClientTarget("demo", BloFinClient(http, auth, retry=client_retry), auth, http, None)
        return
    from hit_server.blofin_sim import create_app

    app = create_app(client_sim_config(**client_sim_overrides))
    creds = Credentials(CLIENT_API_KEY, SecretStr(CLIENT_SECRET), SecretStr(CLIENT_PASSPHRASE))
    auth = BloFinAuth(creds)
    if client_transport == "asgi":
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim.test") as http:
            client = BloFinClient(http, auth, request_timeout=client_request_timeout, retry=client_retry,
                                  rate_limiter=RateLimiter.unlimited())
            yield ClientTarget("asgi", client, auth, http, app.state.sim)
        return
    with UvicornThread(app, start_within=10) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            client = BloFinClient(http, auth, request_timeout=client_request_timeout, retry=client_retry,
                                  rate_limiter=RateLimiter.unlimited())
            yield ClientTarget("uvicorn", client, auth, http, app.state.sim)



# -- the simulator on its own (test_sim_*.py): `app` is the simulator's ASGI app, `sim` its engine,
#    `client` an httpx client that signs every request with the simulator's credentials ----------------


@pytest.fixture
def app() -> FastAPI:
    return create_app(make_config())


@pytest.fixture
def sim(app: FastAPI) -> Simulator:
    engine: Simulator = app.state.sim
    return engine


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with sim_http(app, make_auth(app.state.sim.config)) as c:
        yield c


# -- the journal's database: SQLite and PostgreSQL ----------------------------------------------------

POSTGRES_URL_VARIABLE = "HIT_TEST_POSTGRES_URL"  # set by ./run.sh test (tools/postgres.py)


def postgres_test_url() -> str:
    """The throwaway PostgreSQL database of this run. Missing in CI is a failure, never a skip:
    `./run.sh test` starts one there. Elsewhere the test is skipped (the run said so loudly)."""
    url = os.environ.get(POSTGRES_URL_VARIABLE, "")
    if url:
        return this_workers_database(url)
    if os.environ.get("CI"):
        pytest.fail(f"{POSTGRES_URL_VARIABLE} is not set in CI: run the tests with ./run.sh test")
    pytest.skip(f"no PostgreSQL: run ./run.sh test (it starts one) or set {POSTGRES_URL_VARIABLE}")


@functools.cache
def this_workers_database(url: str) -> str:
    """The run's database, or under pytest-xdist one database per worker on the run's cluster (made on
    first use): the journal tests empty and fill the same tables, so two workers must not share them."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    import psycopg
    from psycopg import sql
    from sqlalchemy import make_url

    from hit_server.testing import libpq_conninfo

    base = make_url(url)
    name = f"{base.database}_{worker}"
    with psycopg.connect(libpq_conninfo(url), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return base.set(database=name).render_as_string(hide_password=False)


async def empty_postgres(url: str) -> None:
    """Drop the journal's tables (every test starts from an empty database)."""
    from hit_server.journal import trade_book  # noqa: F401 - registers the monitor's table beside the journal's
    from hit_server.journal.db import Base

    database = Database(url)
    try:
        await database.transaction(Base.metadata.drop_all)
    finally:
        await database.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def journal_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A journal database URL: once SQLite (a file in tmp), once PostgreSQL (emptied first)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'journal.db'}"
    url = postgres_test_url()
    await empty_postgres(url)
    return url


@pytest.fixture
async def db(journal_url: str) -> AsyncIterator[Database]:
    """A journal's database with its tables, once on SQLite and once on PostgreSQL (`journal_url`); a
    module that needs another kind defines its own `db`."""
    database = Database(journal_url)
    await database.create_schema()
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def fresh_postgres() -> AsyncIterator[str]:
    """A PostgreSQL database of its own for one test (created on the run's cluster, dropped after): for
    tests that make schemas and the job queue's tables, which `empty_postgres` does not clear."""
    import secrets

    from sqlalchemy import make_url, text
    from sqlalchemy.ext.asyncio import create_async_engine

    base = make_url(postgres_test_url())
    name = f"fleet_{secrets.token_hex(6)}"
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield base.set(database=name).render_as_string(hide_password=False)
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()
