"""BloFin USDT-M futures REST client: the only code that talks to BloFin's REST API.

Built on ONE shared `httpx.AsyncClient` (its `base_url` is BloFin's REST root) and a `BloFinAuth`
signer; the wire details (signing the bytes sent, envelope, error mapping, timeouts, rate limits,
retries, clock skew) live in `blofin_rest.py`. Errors raised are the tree in `blofin_errors.py`.

Reads and idempotent settings are retried with bounded backoff. Order writes (`place_order`,
`place_orders`, `place_tpsl`, `close_position`) are never sent twice, except after an error that
proves the first was not carried out (429, no connection; `BloFinRest.write`): when their outcome is
unclear (timeout, lost connection, 5xx, duplicate clientOrderId) the client looks the order up by its
clientOrderId a few times over a bounded wait (`blofin_lookup.LookupPolicy`: lookups lag behind
acceptance) and returns its ack; if it is still not seen, it raises `OrderOutcomeUnknown` carrying
the clientOrderId, which the caller records as unknown and looks up later.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import ValidationError

from hit_server.exchange.blofin_auth import BloFinAuth
from hit_server.exchange.blofin_batch import place_batch
from hit_server.exchange.blofin_errors import (
    BloFinError,
    DuplicateClientOrderId,
    ExchangeUnavailable,
    InstrumentNotFound,
    NotFound,
)
from hit_server.exchange.blofin_lookup import LookupPolicy, settle_write
from hit_server.exchange.blofin_models import (
    Balance,
    Order,
    OrderAck,
    OrderRequest,
    Position,
    Ticker,
    TpslAck,
    TpslOrder,
    TpslRequest,
    dec,
)
from hit_server.exchange.blofin_rest import BloFinRest, HttpRequester, Params, RetryPolicy, raise_for_items
from hit_server.exchange.instruments import Instrument
from hit_server.exchange.ratelimit import RateLimiter

log = logging.getLogger(__name__)

T = TypeVar("T")
PAGE = 100
MAX_PAGES = 20
MAX_LEVERAGE_IDS = 20  # instIds per batch-leverage-info read (BloFin refuses more: 152015)
_UNCLEAR = (DuplicateClientOrderId, ExchangeUnavailable)


def _parsed(what: str, build: Callable[[], T]) -> T:
    """Run a reply parser; a reply BloFin should never send becomes an `ExchangeUnavailable`."""
    try:
        return build()
    except (KeyError, IndexError, TypeError, ValueError, ValidationError) as exc:
        raise ExchangeUnavailable(f"unexpected reply from BloFin to {what}", code="unreadable") from exc


def _rows(data: Any) -> list[dict[str, Any]]:
    if data is None or data == "":
        return []
    rows = data if isinstance(data, list) else [data]
    return [row for row in rows if isinstance(row, dict)]


def _ids(inst_id: str, id_field: str, exchange_id: str | None, client_order_id: str | None) -> Params:
    if not exchange_id and not client_order_id:
        raise ValueError(f"give {id_field} or client_order_id")
    params = {"instId": inst_id}
    if exchange_id:
        params[id_field] = exchange_id
    else:
        params["clientOrderId"] = client_order_id or ""
    return params


class BloFinClient:
    """One BloFin account. Share one instance (and its rate limiter) for every call on that account."""

    def __init__(
        self,
        http: HttpRequester,
        auth: BloFinAuth,
        *,
        request_timeout: float = 10.0,
        rate_limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        lookup: LookupPolicy | None = None,
    ) -> None:
        """`lookup`: how an unclear write is looked up; by default with the retry policy's sleep, so
        a test that injects one sleep injects both."""
        retry = retry or RetryPolicy()
        self._rest = BloFinRest(
            http, auth, request_timeout=request_timeout, rate_limiter=rate_limiter or RateLimiter(),
            retry=retry,
        )
        self.lookup = lookup or LookupPolicy(sleep=retry.sleep)
        self._instruments: dict[str, Instrument] | None = None
        self._instruments_from: BloFinClient | None = None

    def share_instruments(self, source: BloFinClient) -> None:
        """Take the instruments from `source`'s cache (and reads) instead of reading them: they are public,
        the same for every account, so a fleet worker reads them once for all its accounts."""
        self._instruments_from = source

    def __repr__(self) -> str:
        return "BloFinClient()"

    @property
    def rest(self) -> BloFinRest:
        """The signed wire layer, for reads kept in other modules (e.g. `blofin_history`)."""
        return self._rest

    # -- market data (public) -------------------------------------------------------------------

    async def instruments(self, *, refresh: bool = False) -> dict[str, Instrument]:
        """Every instrument by instId, fetched once and cached until `refresh=True`."""
        if self._instruments_from is not None:
            return await self._instruments_from.instruments(refresh=refresh)
        if self._instruments is None or refresh:
            data = await self._rest.read("GET", "/api/v1/market/instruments", private=False)
            rows = _rows(data)
            self._instruments = _parsed(
                "GET instruments", lambda: {r["instId"]: Instrument.from_blofin(r) for r in rows}
            )
        return self._instruments

    @property
    def cached_instruments(self) -> dict[str, Instrument]:
        """The instruments as last read (empty before the first read), without a request."""
        if self._instruments_from is not None:
            return self._instruments_from.cached_instruments
        return dict(self._instruments or {})

    async def instrument(self, inst_id: str) -> Instrument:
        """The instrument's rules; refreshes the cache once for an id it does not know."""
        found = (await self.instruments()).get(inst_id)
        if found is None:
            found = (await self.instruments(refresh=True)).get(inst_id)
        if found is None:
            raise InstrumentNotFound(f"BloFin lists no instrument {inst_id}", code="152014")
        return found

    async def ticker(self, inst_id: str) -> Ticker:
        data = await self._rest.read(
            "GET", "/api/v1/market/tickers", params={"instId": inst_id}, private=False
        )
        rows = _rows(data)
        if not rows:
            raise InstrumentNotFound(f"BloFin has no ticker for {inst_id}", code="152014")
        return _parsed("GET tickers", lambda: Ticker.from_blofin(rows[0]))

    async def mark_price(self, inst_id: str) -> Decimal:
        data = await self._rest.read(
            "GET", "/api/v1/market/mark-price", params={"instId": inst_id}, private=False
        )
        rows = _rows(data)
        if not rows:
            raise InstrumentNotFound(f"BloFin has no mark price for {inst_id}", code="152014")
        return _parsed("GET mark-price", lambda: dec(rows[0]["markPrice"]))

    async def server_time_offset_ms(self) -> int:
        """BloFin's clock minus ours in ms (the client applies it by itself after a 152405)."""
        return await self._rest.server_time_offset_ms()

    # -- account --------------------------------------------------------------------------------

    async def balance(self) -> Balance:
        """The USDT line of the futures account."""
        data = await self._rest.read("GET", "/api/v1/account/balance")
        return _parsed("GET balance", lambda: Balance.from_blofin(data))

    async def positions(self, inst_id: str | None = None) -> list[Position]:
        """Open positions (rows of size zero are left out), optionally of one instrument."""
        params = {"instId": inst_id} if inst_id else None
        data = await self._rest.read("GET", "/api/v1/account/positions", params=params)
        found = _parsed("GET positions", lambda: [Position.from_blofin(r) for r in _rows(data)])
        return [p for p in found if p.positions != 0 and (inst_id is None or p.inst_id == inst_id)]

    async def held_symbols(self) -> set[str]:
        """The instIds with an open position: the same read as `positions()`, but only each row's
        instId and size are parsed (the risk check of every signal needs no more)."""
        data = await self._rest.read("GET", "/api/v1/account/positions")
        return _parsed("GET positions", lambda: {
            str(r["instId"]) for r in _rows(data) if dec(r.get("positions")) != 0
        })

    async def leverages(self, inst_ids: Sequence[str], margin_mode: str) -> dict[str, int]:
        """The account's leverage on each of `inst_ids` (at most MAX_LEVERAGE_IDS) in `margin_mode`, in
        ONE read (`batch-leverage-info`); BloFin refuses the whole read if one instId is unknown."""
        if not 0 < len(inst_ids) <= MAX_LEVERAGE_IDS:
            raise ValueError(f"between 1 and {MAX_LEVERAGE_IDS} instIds per read, not {len(inst_ids)}")
        params = {"instId": ",".join(inst_ids), "marginMode": margin_mode}
        data = await self._rest.read("GET", "/api/v1/account/batch-leverage-info", params=params)
        return _parsed("GET batch-leverage-info", lambda: _leverages(_rows(data), margin_mode))

    async def set_leverage(self, inst_id: str, leverage: int, margin_mode: str) -> None:
        body = {"instId": inst_id, "leverage": str(leverage), "marginMode": margin_mode}
        await self._rest.read("POST", "/api/v1/account/set-leverage", body=body)

    async def set_margin_mode(self, margin_mode: str) -> None:
        await self._rest.read("POST", "/api/v1/account/set-margin-mode", body={"marginMode": margin_mode})

    async def position_mode(self) -> str:
        """`net_mode` (one-way) or `long_short_mode` (hedge)."""
        data = await self._rest.read("GET", "/api/v1/account/position-mode")
        return _parsed("GET position-mode", lambda: str(data["positionMode"]))

    async def set_position_mode(self, mode: str) -> None:
        await self._rest.read("POST", "/api/v1/account/set-position-mode", body={"positionMode": mode})

    # -- orders ---------------------------------------------------------------------------------

    async def place_order(self, req: OrderRequest) -> OrderAck:
        """Place one order (TP/SL may be attached). See the module docstring for unclear outcomes."""

        async def send() -> OrderAck:
            data = await self._rest.write("POST", "/api/v1/trade/order", body=req.to_blofin())
            raise_for_items(data)
            return _parsed("POST order", lambda: _order_ack(data, req.client_order_id))

        async def lookup() -> OrderAck | None:
            order = await self.order_detail(req.inst_id, client_order_id=req.client_order_id)
            return None if order is None else OrderAck(order_id=order.order_id,
                                                       client_order_id=order.client_order_id)

        cid = req.client_order_id
        return await settle_write(self.lookup, f"order {cid}", cid, send, lookup, _UNCLEAR)

    async def place_orders(self, reqs: Sequence[OrderRequest]) -> list[OrderAck | BloFinError]:
        """Place up to 20 orders of one instrument and margin mode in ONE call; one result per request,
        in order: its ack or the error that refused it (see `blofin_batch` for unclear outcomes)."""
        return await place_batch(self, reqs)

    async def place_tpsl(self, req: TpslRequest) -> TpslAck:
        """Place a TP/SL on an open position; unclear outcomes are resolved like `place_order`."""

        async def send() -> TpslAck:
            data = await self._rest.write("POST", "/api/v1/trade/order-tpsl", body=req.to_blofin())
            raise_for_items(data)
            row = _rows(data)
            return _parsed("POST order-tpsl", lambda: TpslAck(
                tpsl_id=str(row[0]["tpslId"]),
                client_order_id=str(row[0].get("clientOrderId") or req.client_order_id),
            ))

        async def lookup() -> TpslAck | None:
            found = await self.tpsl_detail(req.inst_id, client_order_id=req.client_order_id)
            return None if found is None else TpslAck(tpsl_id=found.tpsl_id,
                                                      client_order_id=found.client_order_id)

        cid = req.client_order_id
        return await settle_write(self.lookup, f"TP/SL order {cid}", cid, send, lookup, _UNCLEAR)

    async def close_position(
        self, inst_id: str, margin_mode: str, *, client_order_id: str | None = None
    ) -> None:
        """Close the whole (net) position at market. Done once the position is flat; never sent twice
        (a second close could close a position opened since): `OrderOutcomeUnknown` when the lookups
        neither find the close order nor a flat position."""
        body = {"instId": inst_id, "marginMode": margin_mode, "positionSide": "net"}
        if client_order_id:
            body["clientOrderId"] = client_order_id

        async def send() -> bool:
            await self._rest.write("POST", "/api/v1/trade/close-position", body=body)
            return True

        async def lookup() -> bool | None:
            if client_order_id and await self.order_detail(inst_id, client_order_id=client_order_id):
                return True
            return True if not await self.positions(inst_id) else None

        await settle_write(self.lookup, f"close of {inst_id}", client_order_id or "", send, lookup, _UNCLEAR)

    async def cancel_order(
        self, inst_id: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> None:
        """Cancel a live order. Raises NotFound when it is absent, filled or already cancelled."""
        body = _ids(inst_id, "orderId", order_id, client_order_id)

        async def send() -> None:
            raise_for_items(await self._rest.write("POST", "/api/v1/trade/cancel-order", body=body))

        async def state() -> str | None:
            order = await self.order_detail(inst_id, order_id=order_id, client_order_id=client_order_id)
            return None if order is None else order.state

        key = order_id or client_order_id or ""
        await self._resolve_cancel(send, state, key, ("live", "partially_filled"))

    async def cancel_tpsl(
        self, inst_id: str, *, tpsl_id: str | None = None, client_order_id: str | None = None
    ) -> None:
        """Cancel a live TP/SL order. Raises NotFound when it is absent, triggered or cancelled, and
        ExchangeUnavailable when BloFin would not cancel it and it is still live."""
        body = [_ids(inst_id, "tpslId", tpsl_id, client_order_id)]
        key = tpsl_id or client_order_id or ""

        async def send() -> None:
            data = await self._rest.write("POST", "/api/v1/trade/cancel-tpsl", body=body)
            failed = next((r for r in _rows(data) if str(r.get("code") or "0") != "0"), None)
            if failed is None:
                return
            # BloFin reports every failed TP/SL cancel item as code "500", whether the TP/SL is gone or
            # the cancel itself failed: its state decides (a live stop is never taken as cancelled)
            code = str(failed["code"])
            current = await state()
            if current == "live":
                raise ExchangeUnavailable(f"BloFin did not cancel TP/SL {key}; it is still live", code=code)
            raise NotFound(f"TP/SL {key} is {current or 'not found'}: nothing to cancel", code=code)

        async def state() -> str | None:
            found = await self.tpsl_detail(inst_id, tpsl_id=tpsl_id, client_order_id=client_order_id)
            return None if found is None else found.state

        await self._resolve_cancel(send, state, key, ("live",))

    # -- order queries --------------------------------------------------------------------------

    async def pending_orders(self, inst_id: str | None = None) -> list[Order]:
        rows = await self._paged("/api/v1/trade/orders-pending", inst_id, "orderId")
        return _parsed("GET orders-pending", lambda: [Order.from_blofin(r) for r in rows])

    async def pending_tpsl(self, inst_id: str | None = None) -> list[TpslOrder]:
        rows = await self._paged("/api/v1/trade/orders-tpsl-pending", inst_id, "tpslId")
        return _parsed("GET orders-tpsl-pending", lambda: [TpslOrder.from_blofin(r) for r in rows])

    async def order_detail(
        self, inst_id: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order | None:
        """The order, or None when BloFin has no such order."""
        rows = await self._detail("/api/v1/trade/order-detail", _ids(inst_id, "orderId", order_id,
                                                                      client_order_id))
        return _parsed("GET order-detail", lambda: Order.from_blofin(rows[0]) if rows else None)

    async def tpsl_detail(
        self, inst_id: str, *, tpsl_id: str | None = None, client_order_id: str | None = None
    ) -> TpslOrder | None:
        """The TP/SL order, or None when BloFin has no such order."""
        rows = await self._detail("/api/v1/trade/order-tpsl-detail", _ids(inst_id, "tpslId", tpsl_id,
                                                                           client_order_id))
        return _parsed("GET order-tpsl-detail", lambda: TpslOrder.from_blofin(rows[0]) if rows else None)

    async def order_history(self, inst_id: str | None = None, limit: int = 100) -> list[Order]:
        """Finished orders (filled, cancelled), newest first; `limit` at most 100."""
        params = {"limit": str(max(1, min(limit, PAGE)))}
        if inst_id:
            params["instId"] = inst_id
        data = await self._rest.read("GET", "/api/v1/trade/orders-history", params=params)
        return _parsed("GET orders-history", lambda: [Order.from_blofin(r) for r in _rows(data)])

    # -- helpers --------------------------------------------------------------------------------

    async def _detail(self, path: str, params: Params) -> list[dict[str, Any]]:
        try:
            data = await self._rest.read("GET", path, params=params)
        except NotFound:
            return []
        return [r for r in _rows(data) if r]

    async def _paged(self, path: str, inst_id: str | None, id_field: str) -> list[dict[str, Any]]:
        params = {"limit": str(PAGE)}
        if inst_id:
            params["instId"] = inst_id
        rows: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            page = _rows(await self._rest.read("GET", path, params=params))
            rows.extend(page)
            if len(page) < PAGE or not page[-1].get(id_field):
                break
            params = {**params, "after": str(page[-1][id_field])}
        return rows

    @staticmethod
    async def _resolve_cancel(
        send: Callable[[], Awaitable[None]], state: Callable[[], Awaitable[str | None]], key: str,
        open_states: Iterable[str],
    ) -> None:
        """Cancel; after an unclear outcome, check the order's state and resend only if still open."""
        try:
            await send()
            return
        except ExchangeUnavailable as exc:
            log.warning("cancel of %s: outcome unclear (%r); checking its state", key, exc)
        current = await state()
        if current is None:
            raise NotFound(f"no order {key} to cancel", code="102068")
        if current in ("canceled", "partially_canceled"):
            return
        if current not in open_states:
            raise NotFound(f"order {key} is already {current}", code="102068")
        await send()


def _leverages(rows: list[dict[str, Any]], margin_mode: str) -> dict[str, int]:
    """instId -> leverage from batch-leverage-info's rows of `margin_mode` and the net position side (the
    one-way mode's); a row with no whole positive leverage is left out rather than guessed at."""
    found: dict[str, int] = {}
    for row in rows:
        if str(row.get("marginMode") or margin_mode) != margin_mode:
            continue
        if str(row.get("positionSide") or "net") != "net":
            continue
        leverage = dec(row["leverage"])
        if leverage >= 1 and leverage == leverage.to_integral_value():
            found[str(row["instId"])] = int(leverage)
    return found


def _order_ack(data: Any, client_order_id: str) -> OrderAck:
    row = _rows(data)[0]
    return OrderAck(
        order_id=str(row["orderId"]), client_order_id=str(row.get("clientOrderId") or client_order_id)
    )
