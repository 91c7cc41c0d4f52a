"""/api/v1/paper: the paper exchange's prices, read and moved by hand (paper mode only).

A user walks a paper trade through its life by moving its symbol's price: `POST /api/v1/paper/price`
moves the in-process simulator's last and mark price exactly as the simulator's own `/sim/price` does
(`Simulator.set_price`), so whatever the move crosses fires on the way, in price order: resting limit
entries fill, stops and targets trigger, and the position monitor follows as it would on BloFin.
`GET /api/v1/paper/prices` lists the paper catalogue (`blofin_sim/catalog.py`) at its current prices.

In demo and live mode the prices are the exchange's: both routes answer 404 `paper_mode_only`. A paper
server pointed at a separate simulator (BLOFIN_BASE_URL) answers 404 too: that simulator's prices are
moved with its own `/sim/price`. Authenticated like every /api/v1 route; errors in the usual shape.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from hit_server.api.http_errors import ApiError, NotReady
from hit_server.api.security import require_api_key
from hit_server.exchange.instruments import Instrument
from hit_server.settings import Settings
from hit_shared.models import ErrorResponse, TradingMode, fmt

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 422, 429, 503)
}
# a decimal as a person writes it ("0.000000001", "3050"), never "1E-9" or "3050.00"
Plain = Annotated[Decimal, PlainSerializer(fmt, return_type=str, when_used="json")]

FOLLOW_NOTE = (
    "PAPER_PRICE_SOURCE=blofin: the next BloFin ticker (within seconds) sets this price back; set "
    "PAPER_PRICE_SOURCE=model to keep the prices you set"
)
WALK_NOTE = "PAPER_PRICE_WALK is on: the price keeps moving on its own from here"


class PaperModeOnly(ApiError):
    """The paper routes on a server whose prices are not its own (demo, live, or an external simulator)."""

    status = 404
    code = "paper_mode_only"


class UnknownSymbol(ApiError):
    status = 422
    code = "unknown_symbol"


class InvalidPrice(ApiError):
    status = 422
    code = "invalid_price"


class PaperPriceRequest(BaseModel):
    """A price to move one paper symbol to (`ETH-USDT`, also `eth-usdt` or `ETH`)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"symbol": "ETH-USDT", "price": "3050"}]}
    )

    symbol: str = Field(min_length=1, max_length=32, description="The paper symbol, e.g. ETH-USDT")
    price: Decimal = Field(
        gt=0,
        le=Decimal(10) ** 12,
        max_digits=30,
        allow_inf_nan=False,
        description="The new last and mark price; rounded to the symbol's tick",
    )


class PaperPriceMove(BaseModel):
    """What a move did: the price now in force (on the tick grid) and the one before it."""

    symbol: str
    price: Plain
    previous: Plain
    note: str | None = Field(default=None, description="Set when the price will not stay where it was put")


class PaperPrice(BaseModel):
    """One paper instrument: its current price and its contract rules (BloFin's names in snake case)."""

    symbol: str
    price: Plain
    state: Literal["live", "suspend"]
    contract_value: Plain
    lot_size: Plain
    min_size: Plain
    tick_size: Plain
    max_leverage: int


class PaperPrices(BaseModel):
    """The paper catalogue at its current prices, by symbol; how the prices move on their own."""

    prices: list[PaperPrice]
    price_source: Literal["model", "blofin"]
    price_walk: bool = Field(description="The model's random walk moves every price each second")


def paper_symbol(written: str) -> str:
    """The catalogue's name for what a person typed: `eth`, `ETH`, `ETHUSDT`, `eth/usdt` -> `ETH-USDT`."""
    symbol = written.strip().upper().replace("/", "-")
    if symbol and "-" not in symbol:
        base = symbol.removesuffix("USDT") or symbol
        symbol = f"{base}-USDT"
    return symbol


class PaperExchange:
    """The in-process simulator's engine and the settings it runs under, for one request."""

    def __init__(self, sim: Any, settings: Settings) -> None:
        self.sim = sim
        self.settings = settings

    def instrument(self, written: str) -> Instrument:
        inst: Instrument | None = self.sim.instruments.get(paper_symbol(written))
        if inst is None:
            raise UnknownSymbol(
                f"'{written}' is not in the paper catalogue; GET /api/v1/paper/prices lists its "
                f"{len(self.sim.instruments)} symbols (demo and live trading know BloFin's full list)."
            )
        return inst

    def note(self) -> str | None:
        if self.settings.paper_price_source == "blofin":
            return FOLLOW_NOTE
        return WALK_NOTE if self.settings.paper_price_walk else None


async def paper_exchange(request: Request) -> PaperExchange:
    """Dependency: the paper exchange of this server, or a 404 saying why there is none."""
    settings: Settings = request.app.state.settings
    if settings.trading_mode is not TradingMode.PAPER:
        raise PaperModeOnly(
            f"Paper prices exist only in paper mode; this server runs in {settings.trading_mode.value} mode, "
            "where prices are BloFin's."
        )
    if settings.exchange_url is not None:
        raise PaperModeOnly(
            "This paper server trades on the simulator at BLOFIN_BASE_URL, not on its own: move that "
            "simulator's prices with its POST /sim/price."
        )
    sim_app = getattr(request.app.state, "sim_app", None)
    if sim_app is None or getattr(request.app.state, "service", None) is None:
        raise NotReady("The server is starting up or shutting down; retry shortly.")
    return PaperExchange(sim_app.state.sim, settings)


PaperDep = Annotated[PaperExchange, Depends(paper_exchange)]
router = APIRouter(
    prefix="/api/v1/paper", tags=["paper"], dependencies=[Depends(require_api_key)], responses=ERRORS
)


@router.get("/prices", response_model=PaperPrices)
async def paper_prices(paper: PaperDep) -> PaperPrices:
    """Every symbol of the paper catalogue with its current price and contract rules."""
    sim = paper.sim
    rows = [
        PaperPrice(
            symbol=inst.inst_id,
            price=sim.prices[inst.inst_id],
            state=inst.state,
            contract_value=inst.contract_value,
            lot_size=inst.lot_size,
            min_size=inst.min_size,
            tick_size=inst.tick_size,
            max_leverage=inst.max_leverage,
        )
        for inst in sorted(sim.instruments.values(), key=lambda inst: inst.inst_id)
    ]
    settings = paper.settings
    walk = settings.paper_price_walk and settings.paper_price_source == "model"
    return PaperPrices(prices=rows, price_source=settings.paper_price_source, price_walk=walk)


@router.post("/price", response_model=PaperPriceMove)
async def move_paper_price(move: PaperPriceRequest, paper: PaperDep) -> PaperPriceMove:
    """Move one symbol's last and mark price; what the move crosses fires as on the exchange."""
    inst = paper.instrument(move.symbol)
    price = inst.round_price(move.price)
    if price <= 0:
        raise InvalidPrice(
            f"Field 'price' is invalid: {fmt(move.price)} is under one tick of {inst.inst_id} "
            f"({fmt(inst.tick_size)})."
        )
    previous: Decimal = paper.sim.prices[inst.inst_id]
    paper.sim.set_price(inst.inst_id, price)
    return PaperPriceMove(symbol=inst.inst_id, price=price, previous=previous, note=paper.note())
