"""`create_app(config)`: the simulator as an ASGI app, built entirely here (no lifespan needed)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from .adversity import ItemFaults
from .auth import AuthChecker
from .config import SimConfig
from .engine import Simulator
from .errors import MESSAGES, SimError
from .faults import FaultPlan
from .limits import RequestLimits
from .market import Market
from .middleware import ACCOUNT_SCOPE_KEY, SignedOnly, SimMiddleware
from .prices import PriceWalk
from .registry import AccountRegistry


class OrderRefused(SimError):
    """A refusal of one order/TP-SL, reported per item in `data` (see SimConfig.failure_envelope)."""

    def __init__(self, err: SimError, item: dict[str, Any], *, as_list: bool = True) -> None:
        super().__init__(err.code, msg=err.msg, status=err.status)
        self.item = {**item, "code": err.code, "msg": err.msg}
        self.as_list = as_list


class SimState:
    """Everything one app instance owns; reachable as `app.state.sim_state`.

    `sim` is the default account's engine (also `app.state.sim`), `market` the instruments and prices
    every account shares, `accounts` every account by API key (`registry.py`), `limits` BloFin's
    request limits with what each IP and key sent (`limits.py`)."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.market = Market()
        self.sim = Simulator(config, market=self.market)
        # the other accounts read the default account's clock, whichever it is now (a test or the
        # whole-system simulation replaces `sim.clock_ms` with a virtual one)
        self.accounts = AccountRegistry(config, self.sim, lambda: self.sim.clock_ms())
        self.auth = AuthChecker(config, self.sim.clock_ms, self.accounts)
        self.faults = FaultPlan()
        self.limits = RequestLimits(config)
        self.walk = PriceWalk(self.sim, config.seed)
        self._walk_task: asyncio.Task[None] | None = None

    @property
    def item_faults(self) -> ItemFaults | None:
        """The default account's refusals of single items of list writes (each account has its own)."""
        return self.sim.item_faults

    @item_faults.setter
    def item_faults(self, faults: ItemFaults | None) -> None:
        self.sim.item_faults = faults

    def account(self, api_key: str | None) -> Simulator:
        """The engine of the account of `api_key` (None or "": the default account); SimError 152401
        (HTTP 404) when the simulator has no such account."""
        return self.accounts.engine(api_key)

    def start_walk(self) -> None:
        """Start the random walk on the first request, inside the server's running loop."""
        if self.config.price_walk and self._walk_task is None:
            loop = asyncio.get_running_loop()
            self._walk_task = loop.create_task(self.walk.run(self.config.walk_interval_s))

    async def stop_walk(self) -> None:
        """Stop the random walk task (tests and embedders that close their event loop call this)."""
        task, self._walk_task = self._walk_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def reset(self) -> None:
        """Everything back to the start: prices, every account (each keeps its key and starting
        balance, with nothing open; accounts added since the start stay), faults, limits, nonces."""
        self.market.reset_prices()
        self.accounts.reset()
        self.auth.reset()
        self.faults.clear()
        self.limits.reset()


async def state_of(request: Request) -> SimState:
    """Async on purpose: a sync dependency would run on a worker thread for every request."""
    state: SimState = request.app.state.sim_state
    return state


StateDep = Annotated[SimState, Depends(state_of)]


def account_of(request: Request) -> Simulator:
    """The engine of the account a private request is signed for (`SignedOnly` puts it in the scope);
    the default account for any other request."""
    sim: Simulator | None = request.scope.get(ACCOUNT_SCOPE_KEY)
    if sim is None:
        default: Simulator = request.app.state.sim
        return default
    return sim


async def _account_dependency(request: Request) -> Simulator:
    """Async for the same reason as `state_of`."""
    return account_of(request)


AccountDep = Annotated[Simulator, Depends(_account_dependency)]


def ok(data: Any) -> dict[str, Any]:
    return {"code": "0", "msg": "", "data": data}


async def _sim_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SimError)  # noqa: S101 - registered for SimError only
    if isinstance(exc, OrderRefused):
        if not exc.as_list:  # endpoints whose data is one object answer the real code at the top
            return JSONResponse({"code": exc.code, "msg": exc.msg, "data": exc.item})
        envelope = (await state_of(request)).config.failure_envelope
        if envelope == "item":
            return JSONResponse({"code": "1", "msg": MESSAGES["1"], "data": [exc.item]})
        if envelope == "zero":
            return JSONResponse({"code": "0", "msg": "", "data": [exc.item]})
        return JSONResponse({"code": exc.code, "msg": exc.msg, "data": [exc.item]})
    return JSONResponse({"code": exc.code, "msg": exc.msg}, status_code=exc.status)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it only
    return JSONResponse({"code": str(exc.status_code), "msg": str(exc.detail)}, status_code=exc.status_code)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"code": "152005", "msg": "Parameter error: wrong or empty"})


Endpoint = Callable[[Request], Awaitable[Any]]


def _direct(route: APIRoute, state: SimState) -> Endpoint | None:
    """A call of the route's endpoint without FastAPI's routing, for endpoints whose only parameters
    are the request, the simulator's state and the request's account `sim` (every /api/ endpoint);
    None for any other."""
    names = set(inspect.signature(route.endpoint).parameters)
    if not names <= {"request", "state", "sim"}:
        return None
    endpoint = route.endpoint

    async def call(request: Request) -> Any:
        kwargs: dict[str, Any] = {"request": request, "state": state}
        if "sim" in names:
            kwargs["sim"] = account_of(request)
        return await endpoint(**{name: kwargs[name] for name in names})

    return call


class SimApp(FastAPI):
    """A FastAPI app whose outermost layer is SimMiddleware (rate limits, faults, drop_reply).

    The BloFin endpoints (`/api/v1/...`) are called straight from a (method, path) table: they take
    only the request and the state, answer plain JSON objects and raise `SimError`s, so FastAPI's
    routing, dependency solving and response validation would only add time to every call (a
    third of it, in paper mode). Everything else (`/sim/...` with its pydantic bodies, unknown
    paths, the WebSocket) goes through FastAPI as usual.

    Kept, with `SignedOnly`, for a figure of bench/server.py (paper mode, concurrency 4; target p50
    <= 15 ms, about 4x the server's CPU per signal): through FastAPI's routing with the signature
    check as a router dependency, the server's CPU per signal measured 1.1 ms more (4.9 -> 6.1 ms, with
    `inprocess.py` undone too; issue #13)."""

    sim_middleware: SimMiddleware | None = None
    direct: dict[tuple[str, str], Endpoint]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.sim_middleware is None:
            await super().__call__(scope, receive, send)
        else:
            await self.sim_middleware(scope, receive, send)

    async def inner(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.direct.get((scope.get("method", ""), scope.get("path", "")))
        if endpoint is None or scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self  # as Starlette does: handlers reach the state through request.app
        request = Request(scope, receive)
        try:
            response: Response = JSONResponse(await endpoint(request))
        except SimError as exc:
            response = await _sim_error(request, exc)
        await response(scope, receive, send)


def create_app(config: SimConfig) -> FastAPI:
    """The simulator app. `app.state.sim` is the engine, `app.state.sim_state` the rest."""
    from .routes_account import router as account_router
    from .routes_market import router as market_router
    from .routes_sim import router as sim_router
    from .routes_trade import router as trade_router
    from .ws import install as install_ws
    from .ws_public import install as install_public_ws

    state = SimState(config)
    app = SimApp(title="BloFin simulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sim = state.sim
    app.state.sim_state = state
    app.add_exception_handler(SimError, _sim_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.include_router(market_router, prefix="/api/v1")
    app.include_router(account_router, prefix="/api/v1")
    app.include_router(trade_router, prefix="/api/v1/trade")
    app.include_router(sim_router, prefix="/sim")
    install_ws(app, state)
    install_public_ws(app, state)
    # every account and trade endpoint is signed (checked by SignedOnly, outside FastAPI's routing)
    private = frozenset(
        [f"/api/v1{route.path}" for route in account_router.routes if isinstance(route, APIRoute)]
        + [f"/api/v1/trade{route.path}" for route in trade_router.routes if isinstance(route, APIRoute)]
    )
    app.sim_middleware = SimMiddleware(SignedOnly(app.inner, state, private), state)
    app.direct = {}
    for prefix, router in (("/api/v1", market_router), ("/api/v1", account_router),
                           ("/api/v1/trade", trade_router)):
        for route in router.routes:
            if isinstance(route, APIRoute) and (endpoint := _direct(route, state)) is not None:
                app.direct.update({(method, prefix + route.path): endpoint for method in route.methods or ()})
    return app
