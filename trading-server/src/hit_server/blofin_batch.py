"""Several orders of one instrument in one call (`POST /api/v1/trade/batch-orders`), at most once each.

BloFin answers a batch item by item, in request order: each item carries its own `code`, and the
top-level code (0 all placed, 1 all failed, 2 some failed) only summarises them. So the result is one
entry per request: its `OrderAck`, or the `BloFinError` that refused it.

Never resent blindly (the rule of `BloFinClient.place_order`): when the outcome of the whole batch is
unclear (timeout, lost connection, 5xx, an unreadable reply) or an item is refused as a duplicate
clientOrderId, each such order is looked up by its clientOrderId; only an order that provably does
not exist is sent again, alone, through `place_order`, with the same clientOrderId (which resolves an
unclear outcome the same way and raises `OrderOutcomeUnknown` when it cannot).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hit_server.blofin_errors import (
    BloFinError,
    DuplicateClientOrderId,
    ExchangeUnavailable,
    OrderOutcomeUnknown,
    error_for,
)
from hit_server.blofin_models import OrderAck, OrderRequest

if TYPE_CHECKING:
    from hit_server.blofin_client import BloFinClient

log = logging.getLogger(__name__)

BATCH_PATH = "/api/v1/trade/batch-orders"
MAX_BATCH = 20
PlaceResult = OrderAck | BloFinError


async def place_batch(client: BloFinClient, reqs: Sequence[OrderRequest]) -> list[PlaceResult]:
    """One result per request, in order. Raises only a definitive refusal of the whole batch."""
    if not reqs:
        return []
    if len(reqs) > MAX_BATCH or len({(r.inst_id, r.margin_mode) for r in reqs}) > 1:
        raise ValueError(f"a batch is at most {MAX_BATCH} orders of one instrument and margin mode")
    try:
        data = await client.rest.write("POST", BATCH_PATH, body=[r.to_blofin() for r in reqs], items=True)
    except ExchangeUnavailable as exc:
        log.warning("batch of %d orders: outcome unclear (%r); looking each one up", len(reqs), exc)
        return [await _settle(client, req, exc) for req in reqs]
    rows = data if isinstance(data, list) else []
    if len(rows) != len(reqs) or not all(isinstance(row, dict) for row in rows):
        unreadable = ExchangeUnavailable("unexpected reply to POST batch-orders", code="unreadable")
        log.warning("batch of %d orders: unreadable reply; looking each one up", len(reqs))
        return [await _settle(client, req, unreadable) for req in reqs]
    return [await _result(client, req, row) for req, row in zip(reqs, rows, strict=True)]


async def _result(client: BloFinClient, req: OrderRequest, row: dict[str, Any]) -> PlaceResult:
    code = str(row.get("code") or "0")
    if code == "0" and row.get("orderId"):
        return OrderAck(
            order_id=str(row["orderId"]), client_order_id=str(row.get("clientOrderId") or req.client_order_id)
        )
    error = error_for(code, str(row.get("msg") or "")) if code != "0" else ExchangeUnavailable(
        "BloFin acknowledged an order without its orderId", code="unreadable"
    )
    if isinstance(error, DuplicateClientOrderId | ExchangeUnavailable):
        return await _settle(client, req, error)
    return error


async def _settle(client: BloFinClient, req: OrderRequest, cause: BloFinError) -> PlaceResult:
    """The order of an unclear outcome: found by its clientOrderId, or sent once more if provably absent."""
    cid = req.client_order_id
    try:
        order = await client.order_detail(req.inst_id, client_order_id=cid)
    except BloFinError as exc:
        unknown = OrderOutcomeUnknown(f"could not look up order {cid} after {cause.code}",
                                      client_order_id=cid)
        unknown.__cause__ = exc
        return unknown
    if order is not None:
        return OrderAck(order_id=order.order_id, client_order_id=order.client_order_id)
    if isinstance(cause, DuplicateClientOrderId):
        return OrderOutcomeUnknown(f"BloFin says order {cid} exists, but it cannot be found",
                                   client_order_id=cid)
    log.warning("order %s: BloFin has no trace of it; sending it once more, same id", cid)
    try:
        return await client.place_order(req)
    except BloFinError as exc:
        return exc
