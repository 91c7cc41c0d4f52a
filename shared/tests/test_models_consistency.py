"""consistency_problem: a signal consistent for its side passes, and each broken rule is named."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from hit_shared.models import Side, consistency_problem

POSITIVE = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(100_000), places=4)


@given(st.sampled_from(Side), POSITIVE, st.lists(POSITIVE, min_size=1, max_size=4),
       st.lists(POSITIVE, min_size=1, max_size=10), st.none() | st.integers(min_value=1, max_value=150))
def test_consistency_problem_passes_prices_in_the_order_of_their_side_and_names_a_stop_past_the_entry(
    side: Side, gap: Decimal, entries: list[Decimal], offsets: list[Decimal], leverage: int | None
) -> None:
    # A long: stop below every entry, every target above them (a short: the mirror image).
    sign = 1 if side is Side.LONG else -1
    base = Decimal(200_000)  # far above every offset, so a short's prices stay positive
    entries = [base + e for e in entries]
    stop = min(entries) - gap if sign == 1 else max(entries) + gap
    targets = list(dict.fromkeys(
        (max(entries) + o if sign == 1 else min(entries) - o) for o in offsets
    ))
    assert consistency_problem(side, entries, stop, targets, leverage) is None
    wrong_stop = max(entries) + gap if sign == 1 else min(entries) - gap
    assert consistency_problem(side, entries, wrong_stop, targets, leverage) is not None


def test_consistency_problem_names_the_first_broken_rule() -> None:
    assert consistency_problem(Side.LONG, [Decimal(60000)], Decimal(60000), [Decimal(65000)], None) == (
        "stop loss 60000 equals the entry 60000"
    )
    assert consistency_problem(Side.SHORT, [], Decimal(3300), [Decimal(3000)], 151) == (
        "leverage 151x is outside 1..150"
    )
    assert consistency_problem(Side.LONG, [], Decimal("NaN"), [Decimal(1)], None) == (
        "every price must be a finite number"
    )
