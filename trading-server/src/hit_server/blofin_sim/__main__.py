"""Run the simulator alone: python -m hit_server.blofin_sim --host 127.0.0.1 --port 8900 ..."""

from __future__ import annotations

import argparse
import logging
import sys
from decimal import Decimal, InvalidOperation

import uvicorn

from hit_server.exchange.blofin_auth import mask

from .app import create_app
from .config import SimConfig

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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = SimConfig(
        api_key=args.api_key, api_secret=args.api_secret, passphrase=args.passphrase, balance=args.balance,
        seed=args.seed, price_walk=args.walk, rate_limit_per_min=args.rate_limit_per_min,
        trade_limit_per_10s=args.trade_limit_per_10s,
    )
    log.info(
        "BloFin simulator on http://%s:%s  api-key=%s api-secret=*** passphrase=*** balance=%s USDT "
        "seed=%s walk=%s limits=%s/min, %s trade/10s",
        args.host, args.port, mask(config.api_key), config.balance, config.seed, config.price_walk,
        config.rate_limit_per_min, config.trade_limit_per_10s,
    )
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
