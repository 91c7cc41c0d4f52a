"""`./run.sh paper ...` (and `.\\run.ps1 paper ...`): move and list the paper exchange's prices.

  paper price SYMBOL PRICE   move one symbol's price (what it crosses fires: entries fill, stops and
                             targets trigger), e.g. `paper price ETH-USDT 3050`
  paper prices               the paper catalogue at its current prices

It talks to the running trading server's `/api/v1/paper/...` routes, which exist only in paper mode.
The server's address and an API key are found the way the server itself finds its settings: the
environment over `trading-server/.env` (HOST, PORT, API_KEYS); without API_KEYS, the key a paper
server generated in `DATA_DIR/api_key`. Standard library only, like the rest of tools/.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import launcher

USAGE = """usage:
  paper price SYMBOL PRICE   move a paper symbol's price, e.g. paper price ETH-USDT 3050
  paper prices               list the paper catalogue at its current prices"""
TIMEOUT_S = 10.0
API_KEY_FILE = "api_key"  # hit_server/settings.py: where a paper server without API_KEYS keeps its key
DEFAULT_DATA_DIR = "data"  # hit_server/settings.py: DATA_DIR's default, inside trading-server/


class Refused(Exception):
    """Something the user reads as one sentence (no traceback): the server is down, refused, ..."""


@dataclass(frozen=True)
class Target:
    url: str
    api_key: str | None
    key_source: str


def find_api_key(environ: Mapping[str, str], server_dir: Path) -> tuple[str | None, str]:
    """The first of API_KEYS (environment, then trading-server/.env), else the paper server's own key
    file in DATA_DIR; with where it came from, for the message when the server refuses it."""
    env_file = launcher.read_env_file(server_dir / ".env")
    keys = launcher.setting("API_KEYS", environ, env_file)
    if keys:
        first = next((part.strip() for part in keys.split(",") if part.strip()), None)
        if first:
            return first, "API_KEYS"
    data_dir = Path(launcher.setting("DATA_DIR", environ, env_file) or DEFAULT_DATA_DIR)
    if not data_dir.is_absolute():
        data_dir = server_dir / data_dir  # the server runs in trading-server/ (./run.sh server)
    path = data_dir / API_KEY_FILE
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None, str(path)
    return (key or None), str(path)


def target(environ: Mapping[str, str], root: Path) -> Target:
    server_dir = root / "trading-server"
    key, source = find_api_key(environ, server_dir)
    return Target(launcher.server_url(environ, server_dir), key, source)


def call(where: Target, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """The JSON answer of one request; Refused with a sentence for anything but a 2xx."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    headers = {"Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    if where.api_key:
        headers["X-API-Key"] = where.api_key
    request = urllib.request.Request(where.url + path, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as reply:  # noqa: S310 (the user's own server)
            return json.loads(reply.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        raise Refused(refusal(where, exc.code, exc.read())) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        raise Refused(
            f"The trading server is not answering at {where.url} ({reason_of(exc)}). Is it running? Start "
            "it with ./run.sh server (paper mode unless trading-server/.env says otherwise) and try again."
        ) from None
    except ValueError:
        raise Refused(
            f"The server at {where.url} did not answer JSON: is it the HIT trading server?"
        ) from None


def reason_of(exc: BaseException) -> str:
    inner = getattr(exc, "reason", exc)
    return str(inner) or type(inner).__name__


def refusal(where: Target, status: int, raw: bytes) -> str:
    """The sentence for an error answer in the server's shape `{"error": {code, message}}`."""
    try:
        error = json.loads(raw.decode("utf-8"))["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        return f"The server at {where.url} answered HTTP {status}; is it the HIT trading server?"
    if status == 401:
        if where.api_key is None:
            return (
                f"No API key found: set API_KEYS in trading-server/.env (or start the server once in paper "
                f"mode, which writes its key to {where.key_source}). The server said: {message}"
            )
        return f"The server refused the API key from {where.key_source}: {message}"
    if code == "paper_mode_only":
        return f"Not in paper mode: {message}"
    if status == 404:
        return f"The server at {where.url} has no paper routes (is it an older version?): {message}"
    return message


def move(where: Target, symbol: str, price: str, out: TextIO) -> None:
    answer = call(where, "POST", "/api/v1/paper/price", {"symbol": symbol, "price": price})
    out.write(f"{answer['symbol']} paper price {answer['price']} (was {answer['previous']})\n")
    if answer.get("note"):
        out.write(f"note: {answer['note']}\n")


def listing(where: Target, out: TextIO) -> None:
    answer = call(where, "GET", "/api/v1/paper/prices")
    rows = answer["prices"]
    width = max((len(row["symbol"]) for row in rows), default=0)
    for row in rows:
        state = "" if row["state"] == "live" else f"  ({row['state']})"
        out.write(f"{row['symbol']:<{width}}  {row['price']}{state}\n")
    walk = ", random walk on" if answer["price_walk"] else ""
    out.write(f"{len(rows)} paper symbols; prices from {answer['price_source']}{walk}\n")


def main(argv: Sequence[str], root: Path, environ: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    """`paper` and its arguments; 0 done, 1 refused (one sentence on `err`), 2 usage."""
    args = list(argv)
    try:
        if args[:1] == ["price"] and len(args) == 3:
            move(target(environ, root), args[1], args[2], out)
            return 0
        if args == ["prices"]:
            listing(target(environ, root), out)
            return 0
    except Refused as exc:
        err.write(f"{exc}\n")
        return 1
    err.write(f"{USAGE}\n")
    return 2
