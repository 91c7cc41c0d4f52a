"""Several orders of one instrument in one call (`POST /api/v1/trade/batch-orders`), at most once each.

BloFin answers a batch item by item, in request order: each item carries its own `code`, and the
top-level code (0 all placed, 1 all failed, 2 some failed) only summarises them. So the result is one
entry per request: its `OrderAck`, or the `BloFinError` that refused it.

Never sent twice (the rule of `BloFinClient.place_order`): when the outcome of the whole batch is
unclear (timeout, lost connection, 5xx, an unreadable reply), or an item's is (a 5xx code, a duplicate
clientOrderId, an ack without an orderId), those orders are looked up by their clientOrderIds,
together, a few times over the client's bounded wait (`blofin_lookup.LookupPolicy`); an order still
not seen is reported as `OrderOutcomeUnknown` with its clientOrderId, for the caller to record as
unknown and look up later.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from hit_server.exchange.blofin_errors import (
    BloFinError,
    DuplicateClientOrderId,
    ExchangeUnavailable,
    error_for,
)
from hit_server.exchange.blofin_lookup import LookupPolicy, unknown_outcome
from hit_server.exchange.blofin_models import Order, OrderAck, OrderRequest
from hit_server.exchange.blofin_rest import BloFinRest

log = logging.getLogger(__name__)

BATCH_PATH = "/api/v1/trade/batch-orders"
MAX_BATCH = 20
PlaceResult = OrderAck | BloFinError


class BatchClient(Protocol):
    """What a batch needs of the client (`BloFinClient`): its REST layer, its lookup policy and the
    lookup of one order."""

    @property
    def rest(self) -> BloFinRest: ...

    @property
    def lookup(self) -> LookupPolicy: ...

    async def order_detail(
        self, inst_id: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order | None: ...


async def place_batch(client: BatchClient, reqs: Sequence[OrderRequest]) -> list[PlaceResult]:
    """One result per request, in order. Raises only a definitive refusal of the whole batch."""
    if not reqs:
        return []
    if len(reqs) > MAX_BATCH or len({(r.inst_id, r.margin_mode) for r in reqs}) > 1:
        raise ValueError(f"a batch is at most {MAX_BATCH} orders of one instrument and margin mode")
    try:
        data = await client.rest.write("POST", BATCH_PATH, body=[r.to_blofin() for r in reqs], items=True)
    except ExchangeUnavailable as exc:
        log.warning("batch of %d orders: outcome unclear (%r); looking each one up", len(reqs), exc)
        return _in_order(await _settle(client, {i: (req, exc) for i, req in enumerate(reqs)}))
    rows = data if isinstance(data, list) else []
    if len(rows) != len(reqs) or not all(isinstance(row, dict) for row in rows):
        unreadable = ExchangeUnavailable("unexpected reply to POST batch-orders", code="unreadable")
        log.warning("batch of %d orders: unreadable reply; looking each one up", len(reqs))
        return _in_order(await _settle(client, {i: (req, unreadable) for i, req in enumerate(reqs)}))
    results: list[PlaceResult] = [_result(req, row) for req, row in zip(reqs, rows, strict=True)]
    unclear = {i: (req, cause) for i, (req, cause) in enumerate(zip(reqs, results, strict=True))
               if isinstance(cause, DuplicateClientOrderId | ExchangeUnavailable)}
    if unclear:
        settled = await _settle(client, unclear)
        results = [settled[i] if i in unclear else result for i, result in enumerate(results)]
    return results


def _result(req: OrderRequest, row: dict[str, Any]) -> PlaceResult:
    """The item's ack, or its error (an unclear one is settled by the caller)."""
    code = str(row.get("code") or "0")
    if code == "0" and row.get("orderId"):
        return OrderAck(
            order_id=str(row["orderId"]), client_order_id=str(row.get("clientOrderId") or req.client_order_id)
        )
    if code != "0":
        return error_for(code, str(row.get("msg") or ""))
    return ExchangeUnavailable("BloFin acknowledged an order without its orderId", code="unreadable")


Unclear = Mapping[int, tuple[OrderRequest, BloFinError]]


def _in_order(results: dict[int, PlaceResult]) -> list[PlaceResult]:
    return [results[i] for i in sorted(results)]


async def _settle(client: BatchClient, unclear: Unclear) -> dict[int, PlaceResult]:
    """Each unclear order (keyed as in `unclear`) found by its clientOrderId within the bounded
    wait, else `OrderOutcomeUnknown`; never sent again."""
    found: dict[int, PlaceResult] = {}
    failures: dict[int, BloFinError] = {}

    async def settled() -> bool:
        for i, (req, _) in unclear.items():
            if i in found:
                continue
            try:
                order = await client.order_detail(req.inst_id, client_order_id=req.client_order_id)
            except BloFinError as exc:
                failures[i] = exc
                continue
            if order is not None:
                found[i] = OrderAck(order_id=order.order_id, client_order_id=order.client_order_id)
        return len(found) == len(unclear)

    await client.lookup.until(settled)
    for i, (req, cause) in unclear.items():
        if i not in found:
            log.warning("order %s: still not found after the lookups; its outcome is unknown",
                        req.client_order_id)
            found[i] = unknown_outcome(f"order {req.client_order_id}", req.client_order_id, cause,
                                       failures.get(i))
    return found
