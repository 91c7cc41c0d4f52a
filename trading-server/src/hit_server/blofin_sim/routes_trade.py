"""Private trading endpoints: orders, TP/SL orders, cancels, queries, close-position.

A refused order is reported per item (`OrderRefused`) unless the refusal is a parameter error (152xxx),
which BloFin answers at the top level. Each endpoint acts on `sim`, the account the request is signed for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from fastapi import APIRouter, Request

from . import parsing, views
from .adversity import BATCH_PATH, CANCEL_TPSL_PATH
from .app import AccountDep, OrderRefused, SimState, StateDep, ok
from .engine import Simulator
from .errors import MESSAGES, SimError, param_missing
from .models import OrderParams, SimOrder, SimTpsl

router = APIRouter()
T = TypeVar("T")


async def _body(request: Request) -> Any:
    return parsing.load_json(await request.body())


def _refused(err: SimError, item: dict[str, Any], *, as_list: bool = True) -> SimError:
    return err if err.code.startswith("152") else OrderRefused(err, item, as_list=as_list)


def _place(sim: Simulator, params: OrderParams) -> dict[str, Any]:
    try:
        order = sim.place_order(params)
    except SimError as err:
        raise _refused(err, {"orderId": None, "clientOrderId": params.client_order_id}) from err
    return {"orderId": order.order_id, "clientOrderId": order.client_order_id, "msg": "", "code": "0"}


@router.post("/order")
async def place_order(request: Request, sim: AccountDep) -> dict[str, Any]:
    params = parsing.order_params(parsing.as_object(await _body(request)))
    return ok([_place(sim, params)])


@router.post("/batch-orders")
async def batch_orders(request: Request, sim: AccountDep) -> dict[str, Any]:
    body = await _body(request)
    if not isinstance(body, list) or not body:
        raise SimError("152004")
    if len(body) > 20:
        raise SimError("152006")
    batch = [parsing.order_params(parsing.as_object(row)) for row in body]
    if len({(p.inst_id, p.margin_mode) for p in batch}) > 1:
        raise SimError("152007")
    items = []
    for index, params in enumerate(batch):
        refusal = _item_fault(sim, BATCH_PATH, index)
        if refusal is not None:
            items.append({"orderId": None, "clientOrderId": params.client_order_id, **refusal})
            continue
        try:
            items.append(_place(sim, params))
        except OrderRefused as err:
            items.append(err.item)
    failed = sum(item["code"] != "0" for item in items)
    code = "0" if not failed else ("1" if failed == len(items) else "2")
    return {"code": code, "msg": "" if code == "0" else "Batch operation failed", "data": items}


def _item_fault(sim: Simulator, path: str, index: int) -> dict[str, str] | None:
    """The code and message refusing item `index` of a list write (adversity.ItemFaults), or None."""
    faults = sim.item_faults
    code = faults.refuse(path, index) if faults is not None else None
    if code is None:
        return None
    return {"code": code, "msg": MESSAGES.get(code, "Simulated item failure")}


@router.post("/order-tpsl")
async def place_tpsl(request: Request, sim: AccountDep) -> dict[str, Any]:
    params = parsing.tpsl_params(parsing.as_object(await _body(request)))
    try:
        tpsl = sim.place_tpsl(params)
    except SimError as err:
        raise _refused(err, {"tpslId": None, "clientOrderId": params.client_order_id},
                       as_list=False) from err
    return ok({"tpslId": tpsl.tpsl_id, "clientOrderId": tpsl.client_order_id, "code": "0", "msg": ""})


def _ids(body: dict[str, Any], id_field: str) -> tuple[str, str, str]:
    inst_id = parsing.text(body, "instId")
    the_id = parsing.text(body, id_field)
    client_id = parsing.text(body, "clientOrderId")
    if not the_id and not client_id:
        raise SimError("152003", id_field, "clientOrderId")
    return inst_id, the_id, client_id


@router.post("/cancel-order")
async def cancel_order(request: Request, sim: AccountDep) -> dict[str, Any]:
    inst_id, order_id, client_id = _ids(parsing.as_object(await _body(request)), "orderId")
    try:
        order = sim.cancel_order(inst_id, order_id, client_id)
    except SimError as err:
        raise _refused(err, {"orderId": order_id or None, "clientOrderId": client_id}) from err
    return ok([{"orderId": order.order_id, "clientOrderId": order.client_order_id, "code": "0", "msg": ""}])


@router.post("/cancel-tpsl")
async def cancel_tpsl(request: Request, state: StateDep, sim: AccountDep) -> dict[str, Any]:
    body = await _body(request)
    rows = body if isinstance(body, list) else [body]
    items: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        inst_id, tpsl_id, client_id = _ids(parsing.as_object(row), "tpslId")
        refusal = _item_fault(sim, CANCEL_TPSL_PATH, index)
        if refusal is not None:
            items.append({"tpslId": tpsl_id or None, "clientOrderId": client_id, **refusal})
            continue
        try:
            tpsl = sim.cancel_tpsl(inst_id, tpsl_id, client_id)
            items.append(
                {"tpslId": tpsl.tpsl_id, "clientOrderId": tpsl.client_order_id, "code": "0", "msg": ""}
            )
        except SimError as err:
            items.append({"tpslId": tpsl_id or None, "clientOrderId": client_id, "code": err.code,
                          "msg": err.msg})
    return _list_envelope(state, items)


def _list_envelope(state: SimState, items: list[dict[str, Any]]) -> dict[str, Any]:
    """A list write's answer when some items failed, in the configured `failure_envelope`: "item"
    (top-level 1 all failed, 2 some), "zero" (top-level 0 whatever failed) or "top" (the first
    failed item's code at the top level)."""
    failed = [item for item in items if item["code"] != "0"]
    envelope = state.config.failure_envelope
    if not failed or envelope == "zero":
        return {"code": "0", "msg": "", "data": items}
    if envelope == "top":
        return {"code": failed[0]["code"], "msg": failed[0]["msg"], "data": items}
    return {"code": "1" if len(failed) == len(items) else "2", "msg": "", "data": items}


def _query(request: Request) -> dict[str, Any]:
    return dict(request.query_params)


def _stamp(row: Any) -> int:
    """When a row was created (orders, TP/SL orders) or happened (fills), in ms."""
    stamp = getattr(row, "create_time", None)
    return int(getattr(row, "ts", 0) if stamp is None else stamp)


def _visible(sim: Simulator, item_id: str) -> bool:
    """Whether lookups see this order or TP/SL order yet (adversity.LookupLag)."""
    return sim.lag.visible(item_id, sim.clock_ms())


def _listing(
    request: Request, rows: Iterable[T], view: Callable[[T], dict[str, Any]],
    visible: Callable[[T], bool] | None = None,
) -> dict[str, Any]:
    """Newest first, at most `limit`, of one instId if asked, of the rows `visible` lets through;
    only the rows answered are rendered (a history holds every order ever placed)."""
    query = _query(request)
    limit = parsing.limit_of(query.get("limit"))
    inst_id = query.get("instId", "")
    chosen = [r for r in rows if inst_id in ("", getattr(r, "inst_id", None))]
    if visible is not None:
        chosen = [r for r in chosen if visible(r)]
    chosen.sort(key=_stamp, reverse=True)
    return ok([view(r) for r in chosen[:limit]])


@router.get("/orders-pending")
async def orders_pending(request: Request, sim: AccountDep) -> dict[str, Any]:
    return _listing(request, sim.open_orders(), views.order_view,
                    lambda o: _visible(sim, o.order_id))


@router.get("/orders-tpsl-pending")
async def orders_tpsl_pending(request: Request, sim: AccountDep) -> dict[str, Any]:
    return _listing(request, sim.live_tpsl(), views.tpsl_view, lambda t: _visible(sim, t.tpsl_id))


@router.get("/orders-history")
async def orders_history(request: Request, sim: AccountDep) -> dict[str, Any]:
    done = [o for o in sim.orders.values() if not o.is_open]
    wanted = _query(request).get("state", "")
    return _listing(request, [o for o in done if wanted in ("", o.state)], views.order_view,
                    lambda o: _visible(sim, o.order_id))


@router.get("/orders-tpsl-history")
async def orders_tpsl_history(request: Request, sim: AccountDep) -> dict[str, Any]:
    done = [t for t in sim.tpsl_orders.values() if t.state != "live"]
    return _listing(request, done, views.tpsl_view, lambda t: _visible(sim, t.tpsl_id))


@router.get("/fills-history")
async def fills_history(request: Request, sim: AccountDep) -> dict[str, Any]:
    order_id = _query(request).get("orderId", "")
    fills = [f for f in sim.fills if order_id in ("", f.order_id)]
    return _listing(request, fills, views.fill_view)


def _detail_ids(request: Request, id_field: str) -> tuple[str, str, str]:
    query = _query(request)
    inst_id = parsing.text(query, "instId")
    if not inst_id:
        raise param_missing("instId")
    _, the_id, client_id = _ids(query, id_field)
    return inst_id, the_id, client_id


@router.get("/order-detail")
async def order_detail(request: Request, sim: AccountDep) -> dict[str, Any]:
    """An unknown order answers code 0 with `data: null` (BloFin's reply here is unconfirmed)."""
    inst_id, order_id, client_id = _detail_ids(request, "orderId")
    sim.instrument(inst_id)
    order: SimOrder | None = sim.find_order(inst_id, order_id, client_id)
    return ok(views.order_view(order) if order and _visible(sim, order.order_id) else None)


@router.get("/order-tpsl-detail")
async def tpsl_detail(request: Request, sim: AccountDep) -> dict[str, Any]:
    inst_id, tpsl_id, client_id = _detail_ids(request, "tpslId")
    sim.instrument(inst_id)
    tpsl: SimTpsl | None = sim.find_tpsl(inst_id, tpsl_id, client_id)
    return ok(views.tpsl_view(tpsl) if tpsl and _visible(sim, tpsl.tpsl_id) else None)


@router.post("/close-position")
async def close_position(request: Request, sim: AccountDep) -> dict[str, Any]:
    body = parsing.as_object(await _body(request))
    inst_id = parsing.text(body, "instId", required=True)
    mode = parsing.margin_mode(body)
    client_id = parsing.text(body, "clientOrderId")
    try:
        sim.close_position(inst_id, mode, client_id, parsing.text(body, "positionSide") or "net")
    except SimError as err:
        raise _refused(err, {"instId": inst_id, "clientOrderId": client_id}, as_list=False) from err
    return ok({"instId": inst_id, "positionSide": parsing.text(body, "positionSide") or "net",
               "clientOrderId": client_id})
