"""Management messages scored as a corpus (issue #17), by the same code as `--score` (hit_bot/scoring.py).

The repository's own corpus (tests/data/management_corpus.jsonl: management messages written for these tests
in six languages, with chatter and signals that must keep their outcome) is always scored. Where the shared
folder sits beside the repository, its field guide of management messages is scored too, and the two signal
corpora must still read every signal right with no false trade; without it, the repository's copy of the
public corpus stands in for those."""

from __future__ import annotations

from pathlib import Path

from hit_bot import scoring
from hit_bot.parsing.management import ManagementAction

DATA = Path(__file__).resolve().parent / "data"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "signals"
OWN_CORPUS = DATA / "management_corpus.jsonl"
SHARED_MANAGEMENT = SHARED / "field_guide_management.jsonl"
# The done-when of issue #17: the field guide's management messages read as labelled.
MIN_READ_RIGHT = 0.95


def _score(path: Path) -> scoring.Score:
    return scoring.score(scoring.read_corpus(path), str(path))


def _problems(tally: scoring.Score) -> list[str]:
    return [f"{p.case.id}: {p.kind}: {p.detail}" for p in tally.problems]


def test_own_management_corpus_reads_right_and_asks_no_money_action_it_should_not() -> None:
    tally = _score(OWN_CORPUS)
    assert tally.management >= 150
    assert {"russian", "chinese", "english", "turkish", "spanish", "portuguese"} <= set(tally.families)
    assert set(tally.actions) == {a.value for a in ManagementAction}
    assert tally.unasked_money == 0, _problems(tally)
    assert tally.false_trades == 0, _problems(tally)
    assert tally.management_rate is not None and tally.management_rate >= MIN_READ_RIGHT, _problems(tally)
    assert (tally.right, tally.signals) == (3, 3), _problems(tally)  # signals with a management note
    assert tally.passes(MIN_READ_RIGHT)


def test_shared_management_field_guide_reads_as_labelled_when_present() -> None:
    path = SHARED_MANAGEMENT if SHARED_MANAGEMENT.exists() else OWN_CORPUS
    tally = _score(path)
    assert tally.management > 0
    assert tally.unasked_money == 0 and tally.false_trades == 0, _problems(tally)
    assert tally.management_rate is not None and tally.management_rate >= MIN_READ_RIGHT, _problems(tally)


def test_signal_corpora_still_read_every_signal_and_trade_nothing_else() -> None:
    """No management message mistaken for a signal, and no signal for management: the signal corpora score
    as before issue #17 (public 32 of 32, field guide 39 of 39, no false trade)."""
    expected = {"public.jsonl": 32, "field_guide.jsonl": 39}
    found = {name: SHARED / name for name in expected if (SHARED / name).exists()}
    if not found:
        found = {"public.jsonl": DATA / "public_corpus.jsonl"}
    for name, path in found.items():
        tally = _score(path)
        assert (tally.right, tally.signals) == (expected[name], expected[name]), _problems(tally)
        assert tally.false_trades == 0, _problems(tally)
