"""Request bodies and queries turned into typed values, each problem a BloFin parameter error.

BloFin sends strings; ccxt and others also send numbers and booleans, so both are accepted.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from .errors import SimError, param_error, param_missing
from .models import ORDER_TYPES, MarginMode, OrderParams, OrderType, Side, TpslParams, TpslSpec


def load_json(raw: bytes) -> Any:
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SimError("152004") from exc


def as_object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise SimError("152004")
    return data


def text(body: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise param_missing(name)
        return ""
    if isinstance(value, bool | dict | list):
        raise param_error(name)
    return str(value)


def decimal(body: dict[str, Any], name: str, *, required: bool = False) -> Decimal | None:
    raw = text(body, name, required=required)
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:
        raise param_error(name) from exc
    if not value.is_finite():
        raise param_error(name)
    return value


def flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    raise param_error(name)


def choice(body: dict[str, Any], name: str, allowed: tuple[str, ...], default: str | None = None) -> str:
    value = text(body, name, required=default is None) or cast(str, default)
    if value not in allowed:
        raise param_error(name)
    return value


def side(body: dict[str, Any]) -> Side:
    return cast(Side, choice(body, "side", ("buy", "sell")))


def margin_mode(body: dict[str, Any], default: str | None = None) -> MarginMode:
    return cast(MarginMode, choice(body, "marginMode", ("cross", "isolated"), default))


def _order_price(body: dict[str, Any], name: str) -> Decimal | None:
    value = decimal(body, name)
    return None if value == -1 else value


def tpsl_spec(body: dict[str, Any]) -> TpslSpec:
    """Trigger and order prices; an order price of -1 or absent means a market order when triggered."""
    spec = TpslSpec(
        tp_trigger=decimal(body, "tpTriggerPrice"),
        tp_price=_order_price(body, "tpOrderPrice"),
        sl_trigger=decimal(body, "slTriggerPrice"),
        sl_price=_order_price(body, "slOrderPrice"),
    )
    if spec.tp_price is not None and spec.tp_trigger is None:
        raise param_missing("tpTriggerPrice")
    if spec.sl_price is not None and spec.sl_trigger is None:
        raise param_missing("slTriggerPrice")
    return spec


def order_params(body: dict[str, Any]) -> OrderParams:
    implied = "limit" if body.get("price") not in (None, "") else "market"
    order_type = cast(OrderType, choice(body, "orderType", ORDER_TYPES, implied))
    size = decimal(body, "size", required=True)
    assert size is not None  # noqa: S101 - required=True
    price = decimal(body, "price", required=order_type != "market")
    return OrderParams(
        inst_id=text(body, "instId", required=True),
        side=side(body),
        order_type=order_type,
        size=size,
        price=None if order_type == "market" else price,
        margin_mode=margin_mode(body),
        position_side=text(body, "positionSide") or "net",
        reduce_only=flag(body, "reduceOnly", False),
        client_order_id=text(body, "clientOrderId"),
        tpsl=tpsl_spec(body),
        broker_id=text(body, "brokerId"),
    )


def tpsl_params(body: dict[str, Any]) -> TpslParams:
    size = decimal(body, "size", required=True)
    return TpslParams(
        inst_id=text(body, "instId", required=True),
        side=side(body),
        margin_mode=margin_mode(body),
        size=None if size == -1 else size,
        tpsl=tpsl_spec(body),
        position_side=text(body, "positionSide") or "net",
        client_order_id=text(body, "clientOrderId"),
        reduce_only=flag(body, "reduceOnly", True),
        broker_id=text(body, "brokerId"),
    )


def inst_ids(value: str, limit: int = 20) -> list[str]:
    ids = [v for v in value.split(",") if v]
    if len(ids) > limit:
        raise SimError("152015")
    return ids


def limit_of(value: str | None) -> int:
    if not value:
        return 20
    if not value.isdigit() or not 1 <= int(value) <= 100:
        raise param_error("limit")
    return int(value)
