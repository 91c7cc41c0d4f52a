"""Run the simulator alone: python -m hit_server.blofin_sim --host 127.0.0.1 --port 8900 ...

`--accounts FILE` serves more accounts than the default one from the start: a JSON file with the body
of `POST /sim/accounts`, `{"accounts": [{"api_key": ..., "api_secret": ..., "passphrase": ...,
"balance": "10000"}, ...]}` (see `registry.py`). The per-IP limits key requests by the socket's peer
address (uvicorn's proxy headers are off: no client can pick its IP with X-Forwarded-For)."""

from __future__ import annotations

import argparse
import logging
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

import uvicorn
from pydantic import ValidationError

from hit_server.exchange.blofin_auth import mask

from .app import create_app
from .config import AccountSpec, SimConfig
from .routes_sim import AccountsRequest

log = logging.getLogger("hit_server.blofin_sim")


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m hit_server.blofin_sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--api-key", default="sim-key")
    parser.add_argument("--api-secret", default="sim-secret")
    parser.add_argument("--passphrase", default="sim-passphrase")
    parser.add_argument("--balance", type=_decimal, default=Decimal(100000))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--walk", action="store_true", help="move prices with a seeded random walk")
    parser.add_argument("--rate-limit-per-min", type=int, default=500)
    parser.add_argument("--trade-limit-per-10s", type=int, default=30)
    parser.add_argument("--ip-limit-per-5min", type=int, default=1500,
                        help="more requests than this from one IP in 5 minutes suspend it (0: off)")
    parser.add_argument("--ip-suspend-s", type=float, default=3600.0, help="how long that suspension lasts")
    parser.add_argument("--ip-minute-suspend-s", type=float, default=0.0,
                        help="suspend an IP this long when it goes over the per-minute limit (BloFin: 300)")
    parser.add_argument("--accounts", type=Path, help="a JSON file of more accounts to serve")
    return parser.parse_args(argv)


def load_accounts(path: Path) -> tuple[AccountSpec, ...]:
    """The accounts of an `--accounts` file; SystemExit with a sentence when it can't be used."""
    try:
        return tuple(AccountsRequest.model_validate_json(path.read_bytes()).specs())
    except OSError as exc:
        raise SystemExit(f"--accounts {path}: cannot read it ({exc})") from exc
    except ValidationError as exc:
        raise SystemExit(f"--accounts {path}: not a list of accounts ({exc.error_count()} errors: "
                         f"{exc.errors()[0]['loc']} {exc.errors()[0]['msg']})") from exc


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = SimConfig(
        api_key=args.api_key, api_secret=args.api_secret, passphrase=args.passphrase, balance=args.balance,
        seed=args.seed, price_walk=args.walk, rate_limit_per_min=args.rate_limit_per_min,
        trade_limit_per_10s=args.trade_limit_per_10s, ip_limit_per_5min=args.ip_limit_per_5min,
        ip_suspend_s=args.ip_suspend_s, ip_minute_suspend_s=args.ip_minute_suspend_s,
        accounts=load_accounts(args.accounts) if args.accounts else (),
    )
    log.info(
        "BloFin simulator on http://%s:%s  api-key=%s api-secret=*** passphrase=*** balance=%s USDT "
        "seed=%s walk=%s limits=%s/min and %s/5 min per IP, %s trade/10s per key; %s more accounts",
        args.host, args.port, mask(config.api_key), config.balance, config.seed, config.price_walk,
        config.rate_limit_per_min, config.ip_limit_per_5min, config.trade_limit_per_10s, len(config.accounts),
    )
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="info", proxy_headers=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
