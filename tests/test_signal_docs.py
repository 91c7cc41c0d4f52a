"""TEST_SIGNALS.md cannot drift: every example is parsed and must have the outcome its fence names."""

import sys
from pathlib import Path

import pytest

from hit_bot.parser import parse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import launcher  # noqa: E402

EXAMPLES = launcher.labelled_examples((ROOT / "TEST_SIGNALS.md").read_text(encoding="utf-8"))
KIND = {"signal": "signal", "chatter": "not_signal", "invalid": "invalid", "management": "management"}


def test_signal_docs_have_examples_of_every_kind():
    kinds = [kind for kind, _ in EXAMPLES]
    assert set(kinds) == set(KIND)
    assert kinds.count("signal") >= 8


@pytest.mark.parametrize(("kind", "text"), EXAMPLES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(EXAMPLES)])
def test_signal_docs_example_parses_as_documented(kind, text):
    result = parse(text)
    assert result.kind == KIND[kind], result.reason
    if kind == "invalid":
        assert result.reason


def test_signal_docs_show_every_named_format():
    from hit_bot.parser import PATTERNS

    shown = {parse(text).format for kind, text in EXAMPLES if kind == "signal"}
    assert set(PATTERNS) <= shown
