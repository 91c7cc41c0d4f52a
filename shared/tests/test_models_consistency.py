"""consistency_problem's shortcut for the common case must answer exactly as the full rules do."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hit_shared.models import Side, _order_problem, _shape_problem, consistency_problem

PRICES = st.sampled_from(
    [Decimal(v) for v in ("0", "-0", "-5", "0.5", "1", "2", "3", "100", "58000", "60000", "65000")]
    + [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal("sNaN")]
) | st.decimals(min_value=-10, max_value=100, places=2)
LEVERAGE = st.none() | st.integers(min_value=-2, max_value=160)


def _full_rules(
    side: Side, entries: list[Decimal], stop: Decimal, targets: list[Decimal], leverage: int | None
) -> str | None:
    return _shape_problem([*entries, stop, *targets], targets, leverage) or _order_problem(
        side, entries, stop, targets
    )


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(Side),
    st.lists(PRICES, max_size=4),
    PRICES,
    st.lists(PRICES, max_size=12),
    LEVERAGE,
)
@example(Side.LONG, [Decimal(60000)], Decimal(58000), [Decimal(65000)], None)
@example(Side.SHORT, [Decimal(3200), Decimal(3250)], Decimal(3350), [Decimal(3000)], 20)
@example(Side.SHORT, [], Decimal(3300), [Decimal(3000), Decimal(0)], None)
@example(Side.LONG, [Decimal(60000), Decimal(66000)], Decimal(58000), [Decimal(65000)], None)
def test_consistency_problem_answers_as_the_full_rules(
    side: Side, entries: list[Decimal], stop: Decimal, targets: list[Decimal], leverage: int | None
) -> None:
    assert consistency_problem(side, entries, stop, targets, leverage) == _full_rules(
        side, entries, stop, targets, leverage
    )


def test_consistency_problem_names_the_first_broken_rule_when_the_shortcut_declines() -> None:
    assert consistency_problem(Side.LONG, [Decimal(60000)], Decimal(60000), [Decimal(65000)], None) == (
        "stop loss 60000 equals the entry 60000"
    )
    assert consistency_problem(Side.SHORT, [], Decimal(3300), [Decimal(3000)], 151) == (
        "leverage 151x is outside 1..150"
    )
    assert consistency_problem(Side.LONG, [], Decimal("NaN"), [Decimal(1)], None) == (
        "every price must be a finite number"
    )
