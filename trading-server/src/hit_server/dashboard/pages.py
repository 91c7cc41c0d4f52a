"""The dashboard's read pages: Now (with its live part, polled), a trade, History (and its CSV) and
Performance. Each reads through the same services as the API (`TradeViews`, the exchange client,
the journal) and answers a page for any input: a bad filter is a 400 page, never a 500."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from hit_server.accounts.store import AccountStore
from hit_server.dashboard import charts, forms, stats
from hit_server.dashboard.access import login_redirect, problem, service_or_page, session_of
from hit_server.dashboard.reads import HistoryFilter, closed_trades
from hit_server.dashboard.render import page
from hit_server.exchange.blofin_errors import BloFinError
from hit_server.fleet import overview
from hit_server.fleet.journals import AccountJournals
from hit_server.lifecycle.trade_view import TradeViews
from hit_server.trading.service import TradingService
from hit_shared.models import TradingMode
from hit_shared.trades import TradeDetail, TradeState, TradeView

log = logging.getLogger(__name__)
router = APIRouter(prefix="/dashboard", include_in_schema=False)
HISTORY_PAGE = 100
OPEN_LIMIT = 200


@router.get("")
async def home() -> Response:
    return RedirectResponse("/dashboard/now", status_code=303)


@router.get("/now")
async def now(request: Request) -> Response:
    return await _now(request, "now.html")


@router.get("/now/live")
async def now_live(request: Request) -> Response:
    """The live part of Now alone; dashboard.js fetches it every few seconds."""
    return await _now(request, "now_live.html")


async def _now(request: Request, template: str) -> Response:
    if session_of(request) is None:
        return login_redirect(request)
    service = service_or_page(request)
    if isinstance(service, Response):
        return service
    return page(request, template, **await now_context(service))


async def now_context(service: TradingService) -> dict[str, Any]:
    views = TradeViews(service.journal.db)
    trades: list[TradeView] = []
    for state in (TradeState.OPEN, TradeState.PENDING):
        found = await views.page(state=state, symbol=None, since=None, limit=OPEN_LIMIT, offset=0)
        trades.extend(found.trades)
    account, positions, exchange_error = None, {}, None
    try:
        account = await service.client.balance()
        positions = {p.inst_id: p for p in await service.client.positions() if p.positions != 0}
    except BloFinError as exc:
        log.warning("Dashboard: the exchange could not be read: %s", type(exc).__name__)
        exchange_error = "The exchange could not be read just now; the figures come back when it answers."
    check = service.exchange_check.state
    return {
        "mode": service.mode,
        "live": service.mode is TradingMode.LIVE,
        "halt": service.halted,
        "exchange": "unreachable" if exchange_error else (check.value if check else "unknown"),
        "exchange_error": exchange_error,
        "account": account,
        "unrealized": sum((p.unrealized_pnl for p in positions.values()), Decimal(0)) if account else None,
        "positions": positions,
        "trades": trades,
    }


@router.get("/trades/{signal_id}")
async def trade(request: Request, signal_id: str) -> Response:
    if session_of(request) is None:
        return login_redirect(request)
    service = service_or_page(request)
    if isinstance(service, Response):
        return service
    if not forms.SIGNAL_ID.fullmatch(signal_id):
        return problem(request, 404, "No such trade.")
    found = await TradeViews(service.journal.db).one(signal_id)
    if found is None:
        return problem(request, 404, f"No trade with id {signal_id}.")
    row = await service.journal.get_signal(signal_id)
    body: dict[str, Any] = (row.body if row is not None else None) or {}
    mark = None
    if found.state is TradeState.OPEN:
        try:
            mark = next(
                (p.mark_price for p in await service.client.positions() if p.inst_id == found.symbol), None
            )
        except BloFinError:
            mark = None
    return page(
        request,
        "trade.html",
        trade=found,
        raw_text=body.get("raw_text"),
        signal=body,
        chart=charts.price_levels(levels(found, body, mark)),
        mark=mark,
        can_act=found.state in (TradeState.OPEN, TradeState.PENDING),
    )


def levels(found: TradeDetail, body: dict[str, Any], mark: Decimal | None) -> list[charts.Level]:
    """The prices worth drawing: entries (or the average fill), the stop (and the signal's, when moved),
    each target, and the mark while open."""
    found_levels = []
    if found.avg_entry is not None:
        found_levels.append(charts.Level("avg entry", found.avg_entry, "entry"))
    else:
        for n, entry in enumerate(body.get("entries") or [], start=1):
            found_levels.append(charts.Level(f"entry {n}", Decimal(str(entry)), "entry"))
    if found.stop.price is not None:
        label = "stop BE" if found.stop.at_breakeven else "stop"
        found_levels.append(charts.Level(label, found.stop.price, "stop"))
    original = body.get("stop_loss")
    if original is not None and found.stop.price is not None and Decimal(str(original)) != found.stop.price:
        found_levels.append(charts.Level("signal stop", Decimal(str(original)), "old"))
    for target in found.targets:
        if target.price is not None:
            kind = "hit" if target.state == "hit" else "target"
            found_levels.append(charts.Level(f"TP{target.number}", target.price, kind))
    if mark is not None:
        found_levels.append(charts.Level("mark", mark, "mark"))
    return found_levels


async def _history_rows(request: Request, service: TradingService) -> tuple[HistoryFilter, list[Any]]:
    wanted = forms.history_filter(request.query_params)
    return wanted, await closed_trades(service.journal.db, wanted, await contract_values(service))


async def contract_values(service: TradingService) -> dict[str, Decimal]:
    """Each symbol's contract value, for R; empty when the exchange can't list its instruments."""
    try:
        return {symbol: i.contract_value for symbol, i in (await service.client.instruments()).items()}
    except BloFinError:
        return {}


@router.get("/history")
async def history(request: Request) -> Response:
    if session_of(request) is None:
        return login_redirect(request)
    service = service_or_page(request)
    if isinstance(service, Response):
        return service
    try:
        number = forms.page_number(request.query_params.get("page"))
        wanted, rows = await _history_rows(request, service)
    except forms.BadInput as exc:
        return page(
            request,
            "history.html",
            status=400,
            error=str(exc),
            query=request.query_params,
            rows=[],
            total=None,
            number=1,
            pages=1,
            csv_query="",
        )
    pages = max((len(rows) + HISTORY_PAGE - 1) // HISTORY_PAGE, 1)
    shown = rows[(number - 1) * HISTORY_PAGE : number * HISTORY_PAGE]
    return page(
        request,
        "history.html",
        rows=shown,
        total=stats.summarize("all", rows),
        query=request.query_params,
        number=number,
        pages=pages,
        csv_query=str(request.url.query),
        error=None,
        filtered=wanted,
    )


@router.get("/history.csv")
async def history_csv(request: Request) -> Response:
    if session_of(request) is None:
        return login_redirect(request)
    service = service_or_page(request)
    if isinstance(service, Response):
        return service
    try:
        _, rows = await _history_rows(request, service)
    except forms.BadInput as exc:
        return problem(request, 400, str(exc))
    return Response(
        stats.history_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="hit-history.csv"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/fleet")
async def fleet(request: Request) -> Response:
    """The fleet (FLEET on): the latest fan-outs with their progress, each account with its open trades
    and realised P&L."""
    if session_of(request) is None:
        return login_redirect(request)
    service = service_or_page(request)
    if isinstance(service, Response):
        return service
    if not service.settings.fleet:
        return problem(request, 404, "The fleet is off (FLEET=false): this server trades its own account.")
    db = service.journal.db
    return page(
        request,
        "fleet.html",
        fanouts=await overview.latest_fanouts(db),
        accounts=await overview.account_lines(AccountJournals(db, service.settings),
                                              AccountStore(db, service.settings)),
    )


@router.get("/performance")
async def performance(request: Request) -> Response:
    if session_of(request) is None:
        return login_redirect(request)
    service = service_or_page(request)
    if isinstance(service, Response):
        return service
    rows = await closed_trades(service.journal.db, HistoryFilter(), await contract_values(service))
    return page(
        request,
        "performance.html",
        total=stats.summarize("all", rows),
        curve=charts.pnl_curve(stats.cumulative(rows)),
        bars=charts.daily_bars(stats.daily(rows)),
        by_source=stats.grouped(rows, lambda r: r.source),
        by_symbol=stats.grouped(rows, lambda r: r.symbol),
    )
