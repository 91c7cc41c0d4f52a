"""The trading service: a signal in, at most one trade out, an answer that can be replayed.

`submit` is the whole path of POST /api/v1/signals:
1. under a per-signal_id lock, a known signal_id replays its stored answer (a different body is a
   409); a concurrent duplicate waits for the first and then replays;
2. the market is read (instrument, mark price, balance, positions) and the risk engine decides;
3. the signal and every order it may send are committed to the journal (state "sending") BEFORE
   the first order leaves; the primary key on signal_id guards against a second process;
4. the executor places the orders; the answer and the orders' states are committed.
Anything that fails before step 3 sent nothing and is answered 503 without being journaled, so the
caller's retry starts afresh. After step 3 the answer is always stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from hit_server import clock
from hit_server.api.http_errors import JournalUnavailable, NotReady, SignalConflict
from hit_server.exchange.blofin_client import MAX_LEVERAGE_IDS, BloFinClient
from hit_server.exchange.blofin_errors import BloFinError, InstrumentNotFound, NotFound
from hit_server.exchange.exchange_check import ExchangeCheck
from hit_server.exchange.instruments import Instrument
from hit_server.exchange.mirror import AccountMirror
from hit_server.journal.claims import Claim, ClaimRefused
from hit_server.journal.db import DEFAULT_ACCOUNT, SignalRow
from hit_server.journal.journal import (
    HALT_CLOSE_EVENT,
    AnsweredElsewhere,
    DuplicateSignal,
    EventRecord,
    Journal,
    OrderRecord,
)
from hit_server.risk.engine import (
    MarketView,
    RejectCode,
    Rejection,
    RiskLimits,
    TradePlan,
    assess,
    plan_leverage,
)
from hit_server.settings import Settings
from hit_server.trading import ids
from hit_server.trading.admission import Admission, Snapshot
from hit_server.trading.execution import Execution, Executor, Outcome
from hit_server.trading.execution_run import LeverageOnItsWay
from hit_server.trading.order_plan import plan_orders
from hit_server.trading.reconcile import reconcile_all, reconcile_one
from hit_server.trading.responses import build_response
from hit_server.trading.signal_locks import SignalLocks
from hit_shared.logs import signal_context
from hit_shared.models import HaltRequest, HaltState, TradeResponse, TradeSignal, TradingMode

log = logging.getLogger(__name__)

DUPLICATE_WAIT_S = 10.0
INSTRUMENTS_REFRESH_S = 3600.0  # listings and rules change rarely; an unknown symbol refreshes at once
LEVERAGE_READS_AT_ONCE = 2  # batch-leverage-info reads in flight at start (each through the rate limiter)
T = TypeVar("T")


class MarkSource(Protocol):
    """Mark prices kept warm (`exchange.market_stream.MarkPrices`)."""

    def watch(self, symbol: str) -> None: ...

    def watch_all(self, symbols: Iterable[str]) -> None: ...

    def fresh(self, symbol: str) -> Decimal | None: ...


def limits_from(settings: Settings) -> RiskLimits:
    return RiskLimits(
        risk_per_trade_percent=settings.risk_per_trade_percent,
        max_position_size_usd=settings.max_position_size_usd,
        default_leverage=settings.default_leverage,
        max_leverage=settings.max_leverage,
        max_open_positions=settings.max_open_positions,
        max_entry_deviation_percent=settings.max_entry_deviation_percent,
        max_stop_distance_percent=settings.max_stop_distance_percent,
        max_signal_age_seconds=settings.max_signal_age_seconds,
        margin_mode=settings.margin_mode,
        paper_catalogue=settings.trading_mode is TradingMode.PAPER,
    )


class TradingService:
    def __init__(self, settings: Settings, client: BloFinClient, journal: Journal) -> None:
        self.settings = settings
        self.client = client
        self.journal = journal
        self.mode = settings.trading_mode
        self.limits = limits_from(settings)
        self.mirror = AccountMirror(client)  # fed by the position monitor's stream (monitor.py)
        self.marks: MarkSource | None = None  # set by the server when BloFin's public stream is used
        self.executor = Executor(client, journal.add_or_update_orders, journal.reserve_order, self.mirror)
        self.exchange_check = ExchangeCheck(client)  # credentials and position mode (exchange_check.py)
        self.started = time.monotonic()
        self._locks = SignalLocks()
        self._admission = Admission()
        self._halt = HaltState(halted=False)
        self._margin_mode_set = False
        self._background: list[asyncio.Task[None]] = []

    async def start(self, *, read_leverages: bool = True, own_instruments: bool = True) -> None:
        """Load the halt, reconcile what a previous run left unresolved, and warm what a signal needs
        (the margin mode set, the instruments read: the first signal must not wait for them; with
        `read_leverages`, the account's leverages read in the background: see `_read_leverages`).
        `own_instruments=False`: the client shares another's instruments (a fleet worker's accounts,
        `BloFinClient.share_instruments`), which that one reads and refreshes."""
        row = await self.journal.halt_state()
        self._halt = HaltState(halted=row.halted, reason=row.reason, since=row.since)
        await self.exchange_check.run()  # refused credentials or hedge mode: logged at ERROR here
        await reconcile_all(self)
        with contextlib.suppress(BloFinError):  # a signal tries again (`_market`)
            await self._ensure_margin_mode()
        if own_instruments:
            await self._read_instruments()
            self._background.append(asyncio.create_task(self._refresh_instruments(), name="instruments"))
        if read_leverages:
            self._background.append(asyncio.create_task(self._read_leverages(), name="leverages"))

    async def stop(self) -> None:
        tasks, self._background = self._background, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _refresh_instruments(self) -> None:
        """Read the instruments again every INSTRUMENTS_REFRESH_S."""
        while True:
            await asyncio.sleep(INSTRUMENTS_REFRESH_S)
            await self._read_instruments()

    async def _read_instruments(self) -> None:
        try:
            await self.client.instruments(refresh=True)
        except BloFinError as exc:  # a failure waits for the next refresh
            log.warning("Instruments could not be read (%s); a signal reads them itself", type(exc).__name__)
            return
        if self.marks is not None and self.settings.watch_all_marks:  # a new listing's mark too
            self.marks.watch_all(self.live_symbols())

    def live_symbols(self) -> list[str]:
        """The live instruments as last read (none before the instruments could be read), no request."""
        return [symbol for symbol, inst in self.client.cached_instruments.items() if inst.is_live]

    async def _read_leverages(self) -> None:
        """Read the account's leverage on every live instrument in the configured margin mode into the
        executor's memory, in the background after start (readiness does not wait for it): a first
        signal whose plan asks for the leverage the account already has then sets none, one round trip
        less before its entry (the account of a returning user, or of one who set it on BloFin's site).
        See `read_leverages`."""
        await self.read_leverages(sorted(self.live_symbols()))

    async def read_leverages(
        self, symbols: Sequence[str], *, before_each: Callable[[], Awaitable[None]] | None = None
    ) -> int:
        """Read the account's leverage on `symbols` (in that order, MAX_LEVERAGE_IDS per read) into the
        executor's memory; the number of symbols whose leverage is now known. `before_each` is awaited
        before each read (a fleet worker's pace: only with the IP's spare budget).

        Only read, never set: the executor sets a leverage only when a signal's plan asks for another,
        and forgets what it learned here when the exchange shows another (`Executor.leverage_seen`).
        LEVERAGE_READS_AT_ONCE reads at a time, each through the client's rate limiter (a signal
        meanwhile waits for at most those in flight). A read that fails leaves its instruments unknown:
        their first signal sets the leverage, as before."""
        mode = self.settings.margin_mode
        gate = asyncio.Semaphore(LEVERAGE_READS_AT_ONCE)

        async def read(chunk: Sequence[str]) -> int:
            async with gate:
                if before_each is not None:
                    await before_each()
                try:
                    found = await self.client.leverages(chunk, mode)
                except BloFinError as exc:
                    log.info("Leverage of %s..%s not read (%s); set by their first signal if needed",
                             chunk[0], chunk[-1], type(exc).__name__)
                    return 0
            for symbol, leverage in found.items():
                self.executor.learn_leverage(symbol, mode, leverage)
            return len(found)

        chunks = [symbols[i : i + MAX_LEVERAGE_IDS] for i in range(0, len(symbols), MAX_LEVERAGE_IDS)]
        known = sum(await asyncio.gather(*(read(chunk) for chunk in chunks)))
        log.info("Leverage known for %d of %d live instruments (%s margin)", known, len(symbols), mode)
        return known

    @property
    def signal_locks(self) -> SignalLocks:
        """The per-signal locks `submit` holds while carrying a signal out; the position monitor's
        reconciliation (`reconcile.reconcile_pending`) skips a signal whose lock is taken."""
        return self._locks

    @property
    def halted(self) -> HaltState:
        return self._halt

    # -- signals ---------------------------------------------------------------------------------

    async def submit(self, signal: TradeSignal) -> tuple[TradeResponse, bool]:
        """The answer to a signal and whether it was carried out now (True) or replayed (False)."""
        digest = ids.body_hash(signal)
        with signal_context(signal.signal_id):
            return await self._submit(signal, digest)

    async def _submit(self, signal: TradeSignal, digest: str) -> tuple[TradeResponse, bool]:
        async with self._locks.hold(signal.signal_id):
            # The admission snapshot is taken before every read it relies on (this journal read too).
            snapshot = self._admission.snapshot()
            existing, ours = await self.journal.signal_or_open_symbols(signal.signal_id)
            if existing is not None:
                return await self._replay(existing, digest), False
            try:
                return await self._carry_out(signal, digest, snapshot, ours), True
            except DuplicateSignal:
                row = await self._wait_for_answer(signal.signal_id)
                return await self._replay(row, digest), False

    async def _replay(self, row: SignalRow, digest: str) -> TradeResponse:
        if row.body_hash != digest:
            raise SignalConflict(
                f"Signal '{row.signal_id}' was already received with a different body; "
                "send the original body or use a new signal_id."
            )
        if row.response is None:
            await reconcile_one(self, row)
            row = await self._wait_for_answer(row.signal_id)
        try:
            await self.journal.count_replay(row.signal_id)
        except JournalUnavailable:  # a counter must not keep a stored answer from its caller
            log.warning("Replay of %s not counted: the journal cannot be written", row.signal_id)
        return TradeResponse.model_validate(row.response)

    async def _wait_for_answer(self, signal_id: str) -> SignalRow:
        loop = asyncio.get_running_loop()  # the loop's clock: the one asyncio.sleep below follows
        deadline = loop.time() + DUPLICATE_WAIT_S
        while True:
            row = await self.journal.get_signal(signal_id)
            if row is not None and row.response is not None:
                return row
            if loop.time() > deadline:
                raise NotReady(f"Signal '{signal_id}' is still being processed; retry shortly.")
            await asyncio.sleep(0.05)

    async def _carry_out(
        self, signal: TradeSignal, digest: str, snapshot: Snapshot, ours: set[str]
    ) -> TradeResponse:
        """`ours`: the symbols with an open trade of ours, read after `snapshot` was taken."""
        body = signal.model_dump(mode="json")
        created = clock.utcnow()
        verdict, market, leverage = await self._assess(signal, ours)
        if isinstance(verdict, TradePlan):
            # No await from here to reserve(): concurrent signals can't both take the last slot.
            verdict = assess(signal, self._admission.with_reservations(market, snapshot), self.limits)
            if isinstance(verdict, TradePlan):
                self._admission.reserve(signal.signal_id, signal.symbol)
        try:
            if leverage is not None and not (
                isinstance(verdict, TradePlan)
                and leverage.entry_may_go_first(verdict, market.available, self.limits.fee_buffer_percent)
            ):
                await leverage.answer()  # before the intent is recorded: see `_leverage_ahead`
                leverage = None
            if isinstance(verdict, Rejection):
                return await self._reject(signal, digest, body, created, verdict)
            return await self._place(signal, digest, body, created, verdict, market, leverage)
        finally:
            self._admission.release(signal.signal_id)

    async def _reject(
        self, signal: TradeSignal, digest: str, body: dict[str, Any], created: datetime, rejection: Rejection
    ) -> TradeResponse:
        response = build_response(signal, self.mode, "rejected", rejection.reason, None, [], created)
        await self.journal.record_intent(
            signal.signal_id,
            body_hash=digest,
            body=body,
            symbol=signal.symbol,
            side=signal.side.value,
            orders=(),
            state="received",
        )
        event = EventRecord(
            type="rejected",
            message=f"{signal.symbol} {signal.side.value} rejected: {rejection.text}",
            signal_id=signal.signal_id,
            symbol=signal.symbol,
            data={"code": rejection.code.value},
        )
        return await self._store(signal, Outcome("rejected", rejection.reason, [], [event], False), response)

    async def _place(
        self,
        signal: TradeSignal,
        digest: str,
        body: dict[str, Any],
        created: datetime,
        verdict: TradePlan,
        market: MarketView,
        leverage: LeverageOnItsWay | None,
    ) -> TradeResponse:
        assert market.instrument is not None  # noqa: S101 - a plan always has its instrument
        records = plan_orders(signal, verdict)
        try:
            await self.journal.record_intent(
                signal.signal_id,
                body_hash=digest,
                body=body,
                symbol=signal.symbol,
                side=signal.side.value,
                orders=records,
                state="sending",
                claim=Claim(DEFAULT_ACCOUNT, signal.symbol, self.limits.max_open_positions),
            )
        except ClaimRefused as refused:  # another process holds the symbol, or the account is full
            log.info("Signal %s: the journal refused the claim on %s", signal.signal_id, signal.symbol)
            rejection = self._claim_rejection(signal, market, refused)
            return await self._reject(signal, digest, body, created, rejection)
        run = Execution(signal, verdict, market.instrument, self.settings.margin_mode, records,
                        leverage_on_its_way=leverage)
        outcome = await self.executor.execute(run)
        response = build_response(
            signal, self.mode, outcome.status, outcome.reason, verdict, records, created
        )
        return await self._store(signal, outcome, response)

    def _claim_rejection(self, signal: TradeSignal, market: MarketView, refused: ClaimRefused) -> Rejection:
        """The risk engine's own rejection, given the claimed symbols as open trades of ours (so the answer
        reads the same whichever process or check refused the signal)."""
        seen = replace(
            market,
            symbols_with_open_trade=market.symbols_with_open_trade | refused.claimed,
            open_positions=max(market.open_positions, len(refused.claimed)),
        )
        verdict = assess(signal, seen, self.limits)
        if isinstance(verdict, Rejection):
            return verdict
        # Not expected (the claimed symbols make the risk engine refuse), yet never a trade:
        return Rejection(RejectCode.SYMBOL_ALREADY_OPEN, signal.symbol, "the journal refused its claim")

    async def _store(self, signal: TradeSignal, outcome: Outcome, response: TradeResponse) -> TradeResponse:
        """Store the answer; the answer that stands (another process's, when it answered first)."""
        try:
            await self.journal.finish(
                signal.signal_id,
                status=outcome.status,
                reason=outcome.reason,
                response=response.model_dump(mode="json"),
                orders=outcome.records,
                is_open=outcome.is_open,
                events=outcome.events,
                state=outcome.state,
                all_recorded=True,  # the plan's orders, all committed by record_intent before sending
            )
        except AnsweredElsewhere:
            # Only after RECONCILE_GRACE_SECONDS of silence may another process answer a signal this one
            # is still carrying out (reconcile.py): its answer, from the exchange's own records, stands.
            log.warning("Signal %s: answered meanwhile by another process; that answer stands",
                        signal.signal_id)
            stored = await self.journal.get_signal(signal.signal_id)
            return response if stored is None or stored.response is None else \
                TradeResponse.model_validate(stored.response)
        log.info("Signal %s: %s %s %s", signal.signal_id, outcome.status, signal.symbol, outcome.reason or "")
        return response

    async def _assess(
        self, signal: TradeSignal, ours: set[str]
    ) -> tuple[TradePlan | Rejection, MarketView, LeverageOnItsWay | None]:
        """The risk engine's verdict, the market it judged, and the plan's leverage if it is on its way
        to the exchange (`_leverage_ahead`)."""
        now = clock.utcnow()
        if self._halt.halted:
            market = MarketView(None, Decimal(0), Decimal(0), Decimal(0), 0, frozenset(), True, now)
            return assess(signal, market, self.limits), market, None
        await self.exchange_check.ensure_tradable()
        try:
            market, leverage = await self._market(signal, now, ours)
        except BloFinError as exc:
            log.warning("Market read for %s failed: %s", signal.signal_id, type(exc).__name__)
            raise self.exchange_check.refusal(exc) from exc
        return assess(signal, market, self.limits), market, leverage

    async def _market(
        self, signal: TradeSignal, now: datetime, ours: set[str]
    ) -> tuple[MarketView, LeverageOnItsWay | None]:
        """What the risk check needs, from what is kept warm where it can be (issue #18): the
        instrument from the cache, the mark price from the public stream, positions, resting orders
        and the balance from the account mirror. Whatever is not warm (the first signal on a symbol,
        a stream that is down, a balance too old) is read by REST, all reads at once, while the plan's
        leverage, when it must be set, is on its way (returned, its answer not awaited here)."""
        symbol = signal.symbol
        await self._ensure_margin_mode()
        try:
            instrument = await self.client.instrument(symbol)
        except InstrumentNotFound:
            instrument = None
        mark = Decimal(0) if instrument is None else self._warm_mark(symbol)
        mirror = self.mirror
        balance, held = mirror.balance(), mirror.held_symbols() if mirror.live else None
        leverage = (
            self._leverage_ahead(signal, instrument)
            if instrument is not None and self._untouched(symbol) else None
        )
        try:
            mark_now, balance_now, held_now = await asyncio.gather(
                self.client.mark_price(symbol) if mark is None else _known(mark),
                self.client.balance() if balance is None else _known(balance),
                self.client.held_symbols() if held is None else _known(held),
            )
            # A trade of ours with no position yet is open while its entry rests: only those need it.
            resting = set()
            if ours - held_now:
                resting = self._mirrored_entries() if mirror.live else await self._resting_entries()
        except Exception:
            if leverage is not None:
                await leverage.answer()  # nothing trades: the set is let finish, not left in flight
            raise
        open_symbols = frozenset(held_now | (ours & resting))
        return MarketView(
            instrument=instrument,
            mark_price=mark_now,
            equity=balance_now.equity,
            available=balance_now.available,
            open_positions=len(open_symbols),
            symbols_with_open_trade=open_symbols,
            halted=False,
            now=now,
        ), leverage

    def _untouched(self, symbol: str) -> bool:
        """Whether the live mirror shows nothing at all on `symbol`: no position, no order resting."""
        mirror = self.mirror
        return mirror.live and symbol not in mirror.held_symbols() and not mirror.open_orders(symbol)

    def _leverage_ahead(self, signal: TradeSignal, instrument: Instrument) -> LeverageOnItsWay | None:
        """Send the leverage the plan will ask for now, unless it is known to be on the exchange already;
        None when nothing was sent. Its answer is awaited
        - before the signal's intent is recorded, in general: the set then always falls outside the
          span between the intent and the entry's send. A process killed inside that span leaves a
          signal that can only be answered "failed, nothing was placed" (the entry may have been on its
          way); killed during this round trip, it leaves nothing recorded, and the signal is traded when
          it comes again (a fleet job handed to the next worker, a bot's retry);
        - or only once the entry is sent, when the entry may go first (`LeverageOnItsWay`): one round
          trip less on the first signal on a symbol. The set was still sent before the intent.
        Only on a symbol the account holds nothing on (setting it would change an open position's
        margin), and never decisive: a set refused here is the executor's to meet and report."""
        leverage, _ = plan_leverage(signal, instrument, self.limits)
        symbol, margin_mode = signal.symbol, self.settings.margin_mode
        held = self.executor.known_leverage(symbol, margin_mode)
        if held == leverage:
            return None

        async def send() -> BloFinError | None:
            try:
                await self.executor.set_leverage(symbol, leverage, margin_mode)
            except BloFinError as exc:
                log.info("Leverage %sx for %s not set ahead (%s)", leverage, symbol, type(exc).__name__)
                return exc
            return None

        sent = asyncio.create_task(send(), name=f"leverage {symbol}")
        return LeverageOnItsWay(symbol, leverage, held, sent)

    def _warm_mark(self, symbol: str) -> Decimal | None:
        """The stream's fresh mark price of `symbol`, or None (read REST); from now on it is watched."""
        if self.marks is None:
            return None
        self.marks.watch(symbol)
        return self.marks.fresh(symbol)

    async def _resting_entries(self) -> set[str]:
        return {o.inst_id for o in await self.client.pending_orders() if not o.reduce_only}

    def _mirrored_entries(self) -> set[str]:
        return {o.inst_id for o in self.mirror.open_orders() if not o.reduce_only}

    async def _ensure_margin_mode(self) -> None:
        if not self._margin_mode_set:
            await self.client.set_margin_mode(self.settings.margin_mode)
            self._margin_mode_set = True

    # -- the kill switch -------------------------------------------------------------------------

    async def halt(self, request: HaltRequest) -> HaltState:
        """Halt trading; while halted, the standing halt is answered unchanged (its first reason and
        `since`), nothing new is recorded, and the caller can tell from `since` that it was earlier.
        `cancel_orders` and `close_positions` are carried out either way: asking for them on a second
        halt must not be ignored."""
        row, began = await self.journal.halt_trading(request.reason)
        # Before the first await below: no signal is admitted while orders are being cancelled.
        self._halt = HaltState(halted=True, reason=row.reason, since=row.since)
        if began:
            log.warning("Trading halted: %s", row.reason)
        else:
            log.warning("Halt asked while already halted since %s; the first reason stands: %s",
                        row.since, row.reason)
        cancelled = await self._cancel_entries() if request.cancel_orders else 0
        closed = await self._close_all() if request.close_positions else 0
        return self._halt.model_copy(update={"cancelled_orders": cancelled, "closed_positions": closed})

    async def resume(self) -> HaltState:
        """End the halt; a resume while not halted changes nothing and records no event."""
        if await self.journal.resume_trading():
            log.warning("Trading resumed")
        else:
            log.info("Resume asked while trading was not halted: nothing to do")
        self._halt = HaltState(halted=False)
        return self._halt

    async def _cancel_entries(self) -> int:
        """Cancel our resting entry orders: never the reduce-only exits or stops that protect
        positions, and never an order the trader placed by hand (its clientOrderId is not ours)."""
        count = 0
        for order in await self.client.pending_orders():
            if order.reduce_only or not ids.is_ours(order.client_order_id):
                continue
            await self.client.cancel_order(order.inst_id, order_id=order.order_id)
            count += 1
        return count

    async def _close_all(self) -> int:
        """Close at market the positions of symbols with a trade of ours (a position the trader opened
        by hand on another symbol is left alone), then cancel the exits left resting on them. Each
        trade closed is journaled first (`halt_close`), so its exit reads "halt", not "manual"."""
        ours = await self.journal.open_signals()
        closed: set[str] = set()
        for position in await self.client.positions():
            if position.positions != 0 and position.inst_id in ours:
                await self.journal.add_events([
                    EventRecord(type=HALT_CLOSE_EVENT, signal_id=signal_id, symbol=position.inst_id,
                                message=f"{position.inst_id} {side}: the halt closes the position at market")
                    for signal_id, side in ours[position.inst_id]
                ])
                await self.client.close_position(position.inst_id, position.margin_mode)
                closed.add(position.inst_id)
        for order in await self.client.pending_orders():
            if order.reduce_only and order.inst_id in closed:
                with contextlib.suppress(NotFound):
                    await self.client.cancel_order(order.inst_id, order_id=order.order_id)
        return len(closed)

    # -- reads -----------------------------------------------------------------------------------

    def uptime(self) -> float:
        return time.monotonic() - self.started

    async def exchange_reachable(self) -> bool:
        try:
            async with asyncio.timeout(3):
                await self.client.server_time_offset_ms()
        except (BloFinError, TimeoutError):
            return False
        return True

    async def open_position_count(self) -> int:
        """Positions the exchange reports; the journal's open trades when the exchange can't answer."""
        try:
            positions = await self.client.positions()
        except BloFinError:
            return (await self.journal.counts()).open_trades
        return sum(1 for p in positions if p.positions != 0)

    @property
    def trading_mode(self) -> TradingMode:
        return self.mode

    async def save_orders(self, signal_id: str, orders: Sequence[OrderRecord]) -> None:
        await self.journal.add_or_update_orders(signal_id, orders)


async def _known(value: T) -> T:
    """A value already at hand, as an awaitable beside the reads that are not."""
    return value
