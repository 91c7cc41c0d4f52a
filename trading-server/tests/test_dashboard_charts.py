"""The trade page's price-level chart: labels never written over each other, one label per price."""

from __future__ import annotations

import re
from decimal import Decimal
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from hit_server.dashboard.charts import LABEL_GAP, Level, _label_heights, price_levels
from hit_server.dashboard.render import number


@given(st.lists(st.floats(min_value=15, max_value=300), min_size=1, max_size=12))
def test_chart_labels_keep_their_distance_and_stay_inside(ys: list[float]) -> None:
    ordered = sorted(ys)
    bottom = max(300.0, 15 + LABEL_GAP * len(ys))
    placed = _label_heights(ordered, 15, bottom)
    assert all(b - a >= LABEL_GAP - 1e-9 for a, b in pairwise(placed))
    assert all(15 - 1e-9 <= y <= bottom + 1e-9 for y in placed)


def test_chart_labels_stay_on_their_lines_when_there_is_room() -> None:
    assert _label_heights([20.0, 100.0, 200.0], 15, 300) == [20.0, 100.0, 200.0]


def test_price_levels_share_one_label_per_price_and_write_prices_plainly() -> None:
    svg = price_levels(
        [
            Level("avg entry", Decimal("60000.0"), "entry"),
            Level("stop BE", Decimal("60000"), "stop"),
            Level("TP1", Decimal("60600.50"), "hit"),
            Level("mark", Decimal("60590"), "mark"),
            Level("signal stop", Decimal("5.82E+4"), "old"),
        ]
    )
    labels = re.findall(r"<text [^>]*>([^<]*)</text>", svg)
    assert labels == ["TP1 60600.5", "mark 60590", "avg entry · stop BE 60000", "signal stop 58200"]
    heights = [float(y) for y in re.findall(r'<text x="\d+" y="([\d.]+)"', svg)]
    assert all(b - a >= LABEL_GAP - 0.2 for a, b in pairwise(heights))
    found = re.search(r'viewBox="0 0 \d+ (\d+)"', svg)
    assert found and all(15 <= y <= int(found.group(1)) for y in heights)  # inside the picture
    assert svg.count('class="level ') == 5  # every level keeps its own line


def test_numbers_on_the_pages_have_no_trailing_zeros_or_exponent() -> None:
    assert [number(Decimal(v)) for v in ("145.500", "60000.0", "6E+4", "0.00001230")] == [
        "145.5",
        "60000",
        "60000",
        "0.0000123",
    ]
    assert number(None) == "–"
