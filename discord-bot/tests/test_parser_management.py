"""Management messages (issue #17): what a channel says about a trade already running, read as an action.

Each action in several languages and phrasings, with its figures; then what must never be read as an
action: chatter, signals, reports ("TP1 hit" is not a close), negated, asked and conditional orders."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hit_bot.parser import parse
from hit_bot.parsing.management import MONEY_ACTIONS, Management, ManagementAction


def _read(text: str) -> Management:
    result = parse(text)
    assert result.kind == "management", (result.kind, result.reason)
    assert result.signal is None and result.reason is None and result.management is not None
    return result.management


def _action(text: str) -> str:
    return _read(text).action.value


CLOSES = [
    "Close BTC now, the setup failed",
    "Exit the trade at market",
    "Closing everything here, momentum is gone",
    "Закрываем позицию по рынку",
    "Выхожу из сделки, реакции нет",
    "Закрываю с небольшим минусом",
    "现在全部平仓",
    "#XRP 市价平仓离场",
    "Pozisyonu kapatın",
    "Cerrar la operación ya",
]


@pytest.mark.parametrize("text", CLOSES)
def test_management_reads_a_close(text: str) -> None:
    assert _action(text) == "close"


@pytest.mark.parametrize(
    ("text", "fraction"),
    [
        ("Close half of the position", "0.5"),
        ("Take 30% profit here", "0.3"),
        ("Close 25% at market now", "0.25"),
        ("Scale out a third here", "0.33"),
        ("Secure some profits", None),
        ("Фиксируем половину", "0.5"),
        ("Частично фиксирую прибыль, 40% позиции", "0.4"),
        ("Сократил позицию на треть", "0.33"),
        ("Фиксирую четверть позиции", "0.25"),
        ("先平一半", "0.5"),
        ("减仓，剩下的拿着", None),
        ("部分止盈", None),
        ("Yarısını kapatıyoruz", "0.5"),
        ("Fechar metade da posição", "0.5"),
        ("Закрываем 2/3 позиции", "0.67"),
    ],
)
def test_management_reads_a_partial_close_and_its_part(text: str, fraction: str | None) -> None:
    management = _read(text)
    assert management.action is ManagementAction.PARTIAL_CLOSE
    assert management.fraction == (None if fraction is None else Decimal(fraction))


@pytest.mark.parametrize(
    "text",
    [
        "DOGE signal cancelled, don't enter",
        "Cancel the pending limit orders",
        "This setup is invalidated",
        "Сделка отменяется",
        "Отмена!",
        "Cancelled ❌",
        "Отменяем вход по SOL, сетап сломан",
        "Лимитку отменяем, вход не случился",
        "Лимитный ордер снимаем",
        "#DOGE 这单作废",
        "挂单撤销",
        "İşlem iptal",
    ],
)
def test_management_reads_a_cancel(text: str) -> None:
    assert _action(text) == "cancel"


@pytest.mark.parametrize(
    ("text", "price"),
    [
        ("Move SL to 0.4821", "0.4821"),
        ("New SL: 61250", "61250"),
        ("New SL:\n61250", "61250"),
        ("Raise your stop loss to 2.05", "2.05"),
        ("Trail your stop to 3120", "3120"),
        ("Стоп переставляем на 0.512", "0.512"),
        ("Стоп теперь 13,62$", "13.62"),
        ("#SOL 止损调整到 141.5", "141.5"),
        ("Stopu 1.36 seviyesine çekiyoruz", "1.36"),
    ],
)
def test_management_reads_a_stop_moved_to_a_price(text: str, price: str) -> None:
    management = _read(text)
    assert management.action is ManagementAction.MOVE_STOP
    assert (management.price, management.breakeven) == (Decimal(price), False)


@pytest.mark.parametrize(
    "text",
    [
        "Move SL to entry",
        "SL to breakeven now",
        "TP1 hit, move stop to BE",
        "Переносим стоп в безубыток",
        "Стоп в б/у",
        "Переводим в безубыток",
        "Тейк взяли, стоп двигаем в точку входа",
        "止损上移到开仓价",
        "止損拉到成本價保本",
        "TP1 geldi, stopu girişe çekin",
        "Mover el stop a punto de entrada",
    ],
)
def test_management_reads_a_stop_moved_to_breakeven(text: str) -> None:
    management = _read(text)
    assert management.action is ManagementAction.MOVE_STOP
    assert (management.price, management.breakeven) == (None, True)


def test_management_does_not_guess_the_new_stop_between_two_prices() -> None:
    management = _read("Move SL from 58000 to 59500")
    assert management.action is ManagementAction.MOVE_STOP
    assert (management.price, management.breakeven) == (None, False)


@pytest.mark.parametrize(
    ("text", "targets", "added"),
    [
        ("New targets: 612, 625, 640", ["612", "625", "640"], False),
        ("Update targets: TP3 2.90, TP4 3.10", ["2.90", "3.10"], False),
        ("Add TP4 at 0.5620", ["0.5620"], True),
        ("Добавляю третий тейк на 1.92$", ["1.92"], True),
        ("Новые цели: 2.35, 2.48, 2.60", ["2.35", "2.48", "2.60"], False),
        ("新增目标 0.0215", ["0.0215"], True),
        ("止盈目标调整为 3.45 和 3.60", ["3.45", "3.60"], False),
    ],
)
def test_management_reads_new_targets(text: str, targets: list[str], added: bool) -> None:
    management = _read(text)
    assert management.action is ManagementAction.UPDATE_TARGETS
    assert management.targets == tuple(Decimal(t) for t in targets)
    assert management.price == Decimal(targets[0])
    assert management.added is added


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("TP1 hit ✅", "tp_hit"),
        ("Target 2 reached, congrats", "tp_hit"),
        ("All targets done 🚀", "tp_hit"),
        ("Took profit, nice move", "tp_hit"),
        ("Тейк 1 есть 🔥", "tp_hit"),
        ("Первая цель достигнута", "tp_hit"),
        ("Закрыл 70% по первой цели", "tp_hit"),
        ("止盈1已到达", "tp_hit"),
        ("Hedef 2 ulaştı", "tp_hit"),
        ("Stopped out, next one", "sl_hit"),
        ("SL hit unfortunately", "sl_hit"),
        ("Выбило по стопу", "sl_hit"),
        ("Стоп словили", "sl_hit"),
        ("К сожалению, стоп.", "sl_hit"),
        ("Вся позиция закрыта по стопу", "sl_hit"),
        ("被止损了", "sl_hit"),
        ("Maalesef stop olduk", "sl_hit"),
        ("Entry filled, average 142.30", "other"),
        ("Позиция набрана, средний вход 0.9815", "other"),
        ("已进场，均价 3.412", "other"),
        ("Closed the rest at breakeven", "other"),
        ("Targets unchanged, stop stays at 1.845", "other"),
    ],
)
def test_management_reads_reports_as_no_action(text: str, action: str) -> None:
    management = _read(text)
    assert management.action.value == action
    assert not management.moves_money


@pytest.mark.parametrize(
    ("text", "symbol"),
    [
        ("#ETH 止损移到成本价", "ETH-USDT"),
        ("Close ARB now", "ARB-USDT"),
        ("TP1 hit on BTC-USDT", "BTC-USDT"),
        ("Close LONG SOL, it failed", "SOL-USDT"),
        ("Стоп по #LINK переносим на 14.20", "LINK-USDT"),
        ("Move SL to entry", None),
        ("CLOSE HALF NOW", None),  # all capitals: no word is taken for a coin
        ("Close BTC and ETH now", None),  # two coins: neither
    ],
)
def test_management_names_the_symbol_only_when_the_message_does(text: str, symbol: str | None) -> None:
    assert _read(text).symbol == symbol


def test_management_reading_says_why_with_the_words_read() -> None:
    reason = _read("Тейк 1 взяли, стоп двигаем в точку входа. Пока не закрываем").reason
    assert '"стоп" + "двигаем" + "точку входа"' in reason
    assert "to breakeven" in reason
    assert '"закрываем": negated by "не"' in reason


# -- what is never an action -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "TP1 hit",
        "TP2 hit on ETH 🎯 +12%",
        "Тейк 2 отработал 🔥",
        "止盈1已到达 ✅",
        "Close call on that one, TP1 hit just before the dump",
    ],
)
def test_management_never_reads_a_target_hit_as_a_close(text: str) -> None:
    assert _action(text) == "tp_hit"


@pytest.mark.parametrize(
    "text",
    [
        "Don't close yet, we are fine",
        "No need to close, still above support",
        "Пока не закрываем, держим до второй цели",
        "先不平仓，继续持有",
        "Henüz kapatmayın, hedef yakın",
        "Should we close ETH here?",
        "Did TP1 hit?",
        "If BTC loses 58000, close the long",
        "Если закрепимся ниже 61000, закрываем",
        "如果跌破 2.10 就平仓",
        "Stop loss remains 1.10, targets the same",
        "Стоп в безубытке, можно не переживать",
        "Не входим пока, ждём ретест 0.45",
        "SHORT OP-USDT Entry 2.015 SL 2.140 TP 1.910 - don't enter yet",
        # a cancel of something that is not the trade
        "The conference was cancelled due to weather",
        "Отмена НДС на криптовалюту обсуждается в Думе",
        "币安今天取消了一些交易对",
    ],
)
def test_management_takes_no_money_action_that_is_negated_asked_or_conditional(text: str) -> None:
    result = parse(text)
    assert result.signal is None
    assert result.management is None or not result.management.moves_money


def test_management_reads_a_check_mark_as_the_hit_of_what_it_follows() -> None:
    """`✅` marks what comes before it: `Hedef 1 tamam ✅ stop girişe` is the target reached and the stop
    to the entry, not the stop hit."""
    assert _action("Hedef 1 tamam ✅ stop girişe") == "move_stop"
    assert _action("TP2 ✅ SL ✅") == "sl_hit"
    assert _action("✅ TP1") == "tp_hit"


def test_management_takes_the_order_a_reminder_gives() -> None:
    assert _action("Don't forget to move your stop to breakeven") == "move_stop"


@pytest.mark.parametrize(
    "text",
    [
        "gm everyone, what a day",
        "Market looks bullish, watching 62000 resistance",
        "BTC support at 58000, resistance at 65000",
        "Daily close above 61000 would be very bullish",
        "BTC closing in on 62000 resistance",
        "Price is close to entry again",
        "Доброе утро! Рынок сегодня спокойный",
        "Ожидаю выход из треугольника наверх",
        "大家好，今天行情很平稳",
        "不要追高，等回调再进场",
        "New high and a new month",
        "!close BTC-USDT 50",
        "!sl ETH be",
        "Example format: LONG ETH-USDT Entry: 3010 SL: 2950 TP: 3080",
    ],
)
def test_management_leaves_chatter_and_commands_alone(text: str) -> None:
    assert parse(text).kind == "not_signal"


@pytest.mark.parametrize(
    "text",
    [
        "LONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000 - move SL to BE after TP1",
        "#идея\nLINK/USDT ШОРТ\nВход: 14.10\nСтоп: 14.60\nТейк 1: 13.80\nПосле тейка стоп в безубыток",
        "#SOL/USDT 做多\n入场: 141.2\n止损: 136.5\n止盈: 145, 150",
        "SHORT ETH-USDT Entry 3200 SL 3300 TP 3000 (close half at TP1)",
    ],
)
def test_management_never_takes_a_signal(text: str) -> None:
    assert parse(text).kind == "signal"


@pytest.mark.parametrize(
    "text",
    [
        "XRPUSDT 🟢\nНОВАЯ ЦЕЛЬ\nВход: 1.4125\nТейки: 1.4140-1.4152",
        "İŞLEM TÜRÜ: SHORT\nCOİN: SUI/USDT\n✅ Giriş Bölgesi: 1.512 - 1.548\nHedefler: 1.47 - 1.43 - 1.38",
    ],
)
def test_management_keeps_a_broken_signal_invalid(text: str) -> None:
    """A signal without its stop stays refused with its reason, even when its words could be news of a
    trade (`НОВАЯ ЦЕЛЬ`: a new target; `✅` beside the targets: a target hit)."""
    result = parse(text)
    assert result.kind == "invalid"
    assert result.reason is not None and "stop loss" in result.reason


@pytest.mark.parametrize(
    "text",
    [
        "Signal from yesterday: LONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000 - move SL to 61000",
        "Recap: SHORT ETH-USDT Entry 3200 SL 3300 TP 3000, new TP 2900",
    ],
)
def test_management_never_reads_new_levels_from_a_whole_signal(text: str) -> None:
    """A message that repeats a whole signal may only close, cancel or report on it: its stop and targets
    are the signal's own, never a move of the stop or new targets."""
    result = parse(text)
    assert result.signal is None
    assert result.management is None or result.management.action not in (
        ManagementAction.MOVE_STOP,
        ManagementAction.UPDATE_TARGETS,
        ManagementAction.PARTIAL_CLOSE,
    )


def test_management_money_actions_are_the_five_that_change_a_position() -> None:
    assert {a.value for a in MONEY_ACTIONS} == {
        "close",
        "partial_close",
        "cancel",
        "move_stop",
        "update_targets",
    }


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("TP1 close, move SL to entry", "move_stop"),
        ("TP1 closed ✅ SL to breakeven now", "move_stop"),
        ("Close ETH now", "close"),  # alone, a close is a close
        ("Close half, move SL to entry", "partial_close"),  # a part closed: the trade goes on
    ],
)
def test_management_never_closes_all_in_a_message_that_keeps_the_trade_going(text: str, action: str) -> None:
    """Moving the stop or setting targets says the trade goes on: a close of all of it beside them is the
    report of a target, never a close of the whole position (a money action the message did not ask)."""
    assert _action(text) == action


@pytest.mark.parametrize(
    ("text", "first", "then"),
    [
        ("Close half, move SL to entry", "partial_close", ["move_stop"]),
        ("Фиксирую 50%, стоп в безубыток", "partial_close", ["move_stop"]),
        ("部分止盈50%，止损移到保本", "partial_close", ["move_stop"]),
        ("Closing half here at 2.415, moving SL to 2.30", "partial_close", ["move_stop"]),
        ("BTC update: TP1 done ✅, SL now at entry", "move_stop", []),  # `update` + TP1 gives no targets
        ("Close ETH now, move SL to entry", "move_stop", []),  # a whole close is never a step
        ("Close half, then close half again", "partial_close", []),  # one step per action
    ],
)
def test_management_keeps_the_other_complete_money_actions_of_a_message_in_order(
    text: str, first: str, then: list[str]
) -> None:
    management = _read(text)
    assert management.action.value == first
    assert [step.action.value for step in management.also] == then
    assert all(step.also == () for step in management.also)
