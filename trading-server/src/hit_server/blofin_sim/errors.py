"""BloFin's error codes and messages as the simulator returns them, and the exception that carries one."""

from __future__ import annotations

MESSAGES: dict[str, str] = {
    "1": "All operations failed",
    "2": "Batch operation partially succeeded.",
    "429": "Too Many Requests",
    "500": "Internal Server Error",
    "152001": "Parameter {} cannot be empty.",
    "152002": "Parameter {} error.",
    "152003": "Either parameter {} or {} is required.",
    "152004": "JSON syntax error, Please check if the parameter should be an array or an object.",
    "152006": "Batch orders can be placed for up to 20 at once.",
    "152007": "Batch orders can only be placed with the same instId and marginMode.",
    "152009": (
        "{} must be a combination of numbers, letters, or underscores, "
        "and the maximum length of characters is 32."
    ),
    "152014": "Instrument ID does not exist",
    "152015": "Number of instId values exceeds the maximum limit of 20",
    "152401": (
        "Access key does not exist, Please go to the API Management page and check if it exists "
        "and is in an active state."
    ),
    "152405": "Timestamp in header or signature has expired, need to be within 60s",
    "152407": "Repeated nonce, Reusing within 60 seconds is not allowed.",
    "152408": "Passphrase error",
    "152409": "Signature verification failed",
    "152410": "The value of ACCESS-TIMESTAMP needs to be a millisecond timestamp, e.g: 1704038400000.",
    "542": "Exceeded the maximum order size limit",
    "102002": "Duplicate customized order ID",
    "102005": "Position had been closed",
    "102014": "Limit order exceeds maximum order size limit",
    "102015": "Market order exceeds maximum order size limit",
    "102022": (
        "Failed to place order. You don't have any positions of this contract. "
        "Turn off Reduce-only to continue."
    ),
    "102037": "TP trigger price should be higher than the latest trading price",
    "102038": "SL trigger price should be lower than the latest trading price",
    "102039": "TP trigger price should be lower than the latest trading price",
    "102040": "SL trigger price should be higher than the latest trading price",
    "102047": "Stop loss trigger price should be higher than the order price",
    "102049": "Take profit trigger price should be lower than the order price",
    "102051": "stop loss trigger price should be lower than the order price",
    "102052": "take profit trigger price should be higher than the order price",
    "102068": "Cancel failed as the order has been filled, triggered, canceled or does not exist.",
    "102089": "Position mode mismatch",
    "103003": "Order failed. Insufficient USDT margin in account",
    "110006": "You have pending cross orders. Please cancel them before adjusting your leverage.",
    "110019": "Setting failed. Cancel any open orders, and close positions first.",
}


class SimError(Exception):
    """A refusal the simulator reports in BloFin's envelope (HTTP 200 unless `status` says otherwise)."""

    def __init__(self, code: str, *args: str, msg: str | None = None, status: int = 200) -> None:
        template = MESSAGES.get(code, "")
        text = msg if msg is not None else (template.format(*args) if args else template)
        super().__init__(f"{code}: {text}")
        self.code = code
        self.msg = text
        self.status = status


def param_error(name: str) -> SimError:
    return SimError("152002", name)


def param_missing(name: str) -> SimError:
    return SimError("152001", name)
