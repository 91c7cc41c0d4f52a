"""The simulated instruments and their deterministic starting prices (realistic levels, not live data).

This is the paper catalogue: what the simulator lists, and so what paper mode can trade. The first
sixteen rows (`FIRST_SYMBOLS`) and LUNA-USDT (suspended) are the ones the tests and the whole-system
simulation were written against: keep them as they are. The other rows are liquid USDT perpetuals at
price levels of roughly late 2025, with contract rules shaped like BloFin's (contractValue in the base
currency, sizes in contracts on the lotSize grid, prices on the tickSize grid).
"""

from __future__ import annotations

from decimal import Decimal

from hit_server.exchange.instruments import Instrument

# base: (contractValue, lotSize, minSize, tickSize, maxLeverage, maxMarketSize, maxLimitSize, start price)
_ROWS: dict[str, tuple[str, str, str, str, int, str, str, str]] = {
    "BTC": ("0.001", "0.1", "0.1", "0.1", 150, "6000", "24000", "60000"),
    "ETH": ("0.01", "0.1", "0.1", "0.01", 150, "8000", "36000", "3000"),
    "SOL": ("1", "1", "1", "0.001", 100, "5000", "20000", "150"),
    "XRP": ("100", "1", "1", "0.0001", 100, "2000", "10000", "0.6"),
    "DOGE": ("1000", "1", "1", "0.00001", 75, "2000", "10000", "0.15"),
    "LINK": ("1", "1", "1", "0.001", 75, "5000", "20000", "15"),
    "AVAX": ("1", "1", "1", "0.001", 75, "5000", "20000", "30"),
    "ADA": ("100", "1", "1", "0.0001", 75, "2000", "10000", "0.45"),
    "LTC": ("1", "1", "1", "0.01", 75, "3000", "12000", "80"),
    "BNB": ("0.01", "1", "1", "0.01", 75, "5000", "20000", "580"),
    "ARB": ("10", "1", "1", "0.0001", 50, "3000", "12000", "0.8"),
    "OP": ("1", "1", "1", "0.001", 50, "20000", "80000", "1.8"),
    "SUI": ("1", "1", "1", "0.0001", 50, "20000", "80000", "1.2"),
    "WIF": ("1", "1", "1", "0.0001", 50, "20000", "80000", "2"),
    "PEPE": ("10000000", "1", "1", "0.000000001", 50, "1000", "5000", "0.00001"),
    "1000PEPE": ("10000", "1", "1", "0.0000001", 50, "1000", "5000", "0.01"),
}
# the symbols of the rows above: what the fault tests send one signal each to (tests/conftest.py)
FIRST_SYMBOLS: tuple[str, ...] = tuple(f"{base}-USDT" for base in _ROWS)
_ROWS |= {  # the rest of the paper catalogue: liquid USDT perpetuals at levels of roughly late 2025
    "TRX": ("100", "1", "1", "0.00001", 75, "5000", "20000", "0.29"),
    "BCH": ("0.01", "1", "1", "0.01", 75, "20000", "80000", "495.5"),
    "DOT": ("1", "1", "1", "0.001", 75, "50000", "200000", "2.95"),
    "NEAR": ("1", "1", "1", "0.001", 75, "50000", "200000", "2.45"),
    "TON": ("1", "1", "1", "0.0001", 50, "50000", "200000", "2.18"),
    "HBAR": ("100", "1", "1", "0.00001", 50, "5000", "20000", "0.182"),
    "XLM": ("100", "1", "1", "0.00001", 50, "5000", "20000", "0.28"),
    "ETC": ("1", "1", "1", "0.001", 50, "20000", "80000", "15.2"),
    "UNI": ("1", "1", "1", "0.001", 50, "20000", "80000", "7.45"),
    "AAVE": ("0.1", "0.1", "0.1", "0.01", 50, "10000", "40000", "215.3"),
    "APT": ("1", "1", "1", "0.001", 50, "50000", "200000", "3.15"),
    "ATOM": ("1", "1", "1", "0.001", 50, "50000", "200000", "3.25"),
    "FIL": ("1", "1", "1", "0.001", 50, "50000", "200000", "2.05"),
    "ICP": ("1", "1", "1", "0.001", 50, "20000", "80000", "5.9"),
    "INJ": ("1", "1", "1", "0.001", 50, "20000", "80000", "8.6"),
    "TIA": ("1", "1", "1", "0.0001", 50, "100000", "400000", "0.98"),
    "SEI": ("10", "1", "1", "0.00001", 50, "20000", "80000", "0.19"),
    "RENDER": ("1", "1", "1", "0.001", 50, "50000", "200000", "2.6"),
    "FET": ("10", "1", "1", "0.0001", 50, "20000", "80000", "0.33"),
    "TAO": ("0.01", "0.1", "0.1", "0.01", 50, "20000", "80000", "385.2"),
    "WLD": ("1", "1", "1", "0.0001", 50, "100000", "400000", "0.86"),
    "ENA": ("10", "1", "1", "0.0001", 50, "20000", "80000", "0.41"),
    "ONDO": ("10", "1", "1", "0.0001", 50, "20000", "80000", "0.62"),
    "JUP": ("10", "1", "1", "0.0001", 50, "20000", "80000", "0.36"),
    "PENDLE": ("1", "1", "1", "0.001", 50, "50000", "200000", "3.05"),
    "LDO": ("1", "1", "1", "0.0001", 50, "100000", "400000", "0.85"),
    "CRV": ("10", "1", "1", "0.0001", 50, "20000", "80000", "0.5"),
    "ALGO": ("100", "1", "1", "0.00001", 50, "5000", "20000", "0.18"),
    "VET": ("1000", "1", "1", "0.000001", 50, "5000", "20000", "0.018"),
    "POL": ("100", "1", "1", "0.00001", 50, "5000", "20000", "0.17"),
    "STX": ("10", "1", "1", "0.0001", 50, "20000", "80000", "0.41"),
    "IMX": ("10", "1", "1", "0.0001", 50, "20000", "80000", "0.46"),
    "RUNE": ("1", "1", "1", "0.001", 50, "50000", "200000", "0.92"),
    "HYPE": ("0.1", "1", "1", "0.001", 50, "20000", "80000", "38.5"),
    "ZEC": ("0.01", "0.1", "1", "0.01", 50, "20000", "80000", "455.6"),
    "ASTER": ("1", "1", "1", "0.0001", 50, "100000", "400000", "1.12"),
    "TRUMP": ("1", "1", "1", "0.001", 50, "20000", "80000", "7.2"),
    "EIGEN": ("1", "1", "1", "0.0001", 50, "100000", "400000", "0.82"),
    "STRK": ("10", "1", "1", "0.00001", 50, "20000", "80000", "0.145"),
    "PYTH": ("100", "1", "1", "0.00001", 50, "5000", "20000", "0.098"),
    "JTO": ("1", "1", "1", "0.0001", 50, "100000", "400000", "0.72"),
    "ORDI": ("1", "1", "1", "0.001", 50, "20000", "80000", "5.1"),
    "ETHFI": ("1", "1", "1", "0.0001", 50, "100000", "400000", "0.92"),
    "VIRTUAL": ("1", "1", "1", "0.0001", 50, "100000", "400000", "1.18"),
    "FARTCOIN": ("10", "1", "1", "0.0001", 50, "20000", "80000", "0.3"),
    "PENGU": ("1000", "1", "1", "0.000001", 50, "5000", "20000", "0.017"),
    "1000SHIB": ("1000", "1", "1", "0.000001", 50, "5000", "20000", "0.0095"),
    "1000BONK": ("1000", "1", "1", "0.000001", 50, "5000", "20000", "0.0125"),
    "1000FLOKI": ("100", "1", "1", "0.00001", 50, "5000", "20000", "0.065"),
    "KAS": ("100", "1", "1", "0.000001", 50, "5000", "20000", "0.055"),
}
SUSPENDED_INST = "LUNA-USDT"


def default_instruments() -> dict[str, Instrument]:
    """Every simulated USDT perpetual, plus one suspended instrument for the refusal paths."""
    out: dict[str, Instrument] = {}
    for base, (cv, lot, min_size, tick, lev, mkt, lim, _) in _ROWS.items():
        inst = Instrument(
            inst_id=f"{base}-USDT", base_currency=base, quote_currency="USDT",
            contract_value=Decimal(cv), lot_size=Decimal(lot), min_size=Decimal(min_size),
            tick_size=Decimal(tick), max_leverage=lev, max_limit_size=Decimal(lim),
            max_market_size=Decimal(mkt),
        )
        out[inst.inst_id] = inst
    out[SUSPENDED_INST] = Instrument(
        inst_id=SUSPENDED_INST, base_currency="LUNA", quote_currency="USDT", contract_value=Decimal(1),
        lot_size=Decimal(1), min_size=Decimal(1), tick_size=Decimal("0.0001"), max_leverage=20,
        max_limit_size=Decimal(1000), max_market_size=Decimal(1000), state="suspend",
    )
    return out


def starting_prices() -> dict[str, Decimal]:
    prices = {f"{base}-USDT": Decimal(row[7]) for base, row in _ROWS.items()}
    prices[SUSPENDED_INST] = Decimal("0.5")
    return prices


def fmt(value: Decimal) -> str:
    """A decimal as BloFin writes it: plain digits, never an exponent, no trailing zeros."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text


def instrument_row(inst: Instrument) -> dict[str, str]:
    """`Instrument.to_blofin` with every number in plain notation (str() would give '1E-9' for PEPE)."""
    row = inst.to_blofin()
    for key, value in (
        ("contractValue", inst.contract_value), ("minSize", inst.min_size), ("lotSize", inst.lot_size),
        ("tickSize", inst.tick_size), ("maxLimitSize", inst.max_limit_size),
        ("maxMarketSize", inst.max_market_size),
    ):
        row[key] = fmt(value)
    return row
