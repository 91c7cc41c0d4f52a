"""How a message is normalised before it is read (hit_bot/parsing/normalise.py): the words of other
languages, links and mentions, and the two normalised forms the parser reads."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from hit_bot.parser import parse
from hit_bot.parsing.normalise import _FOREIGN_WORD, _FOREIGN_WORDS, _one_pattern, drop_commentary, normalise

SIGNAL = "LONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000"

# Text made of the shipped foreign words (in any case), English labels, numbers, links and noise.
_PIECES = st.sampled_from(
    [
        "Вход", "вход", "стоп-лосс", "ТЕЙКИ", "цель", "giriş", "GİRİŞ", "hedefler", "kaldıraç", "compra",
        "COMPRAR", "largo", "venta", "entrada", "precio de entrada", "alvos", "做多", "多", "空", "止损",
        "止盈", "目标", "杠杆", "LONG", "SL", "TP", ":", " ", "\n", "-", "/", "60000", "0.512", "1,5", "(2%)",
        "5%", "https://x.com/entrada/1", "<@123>", "<a:compra:123456>", "📈", "🎯", "✅", "ı", "ß", "x",
    ]
)  # fmt: skip
_MESSAGES = st.lists(_PIECES, max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(_MESSAGES)
def test_normalise_drops_the_commentary_of_the_form_that_keeps_it(text: str) -> None:
    """The parser makes the form with the commentary once and drops it for the other: the same text as
    normalising twice."""
    assert normalise(text) == drop_commentary(normalise(text, keep_commentary=True))


@settings(max_examples=300, deadline=None)
@given(_MESSAGES.map(str.upper))
def test_normalise_one_pattern_of_the_foreign_words_finds_what_each_word_finds(text: str) -> None:
    """Words in a row that start with a word boundary share it in the one pattern: the matches are those
    of the words tried one after the other."""
    words = [word for word, _english in _FOREIGN_WORDS]
    plain = re.compile("|".join(f"(?:{word})" for word in words))
    assert [m.span() for m in _FOREIGN_WORD.finditer(text)] == [m.span() for m in plain.finditer(text)]


def test_normalise_one_pattern_shares_the_boundary_of_words_in_a_row_only() -> None:
    assert _one_pattern(["A", "\\bB", "\\bC", "D", "\\bE"]) == "(?:A)|\\b(?:(?:B)|(?:C))|(?:D)|\\b(?:(?:E))"


def test_normalise_reads_foreign_words_in_any_case() -> None:
    for text in (
        "ЛОНГ BTC-USDT вход 60000 стоп 58000 цель 65000",
        "long btc-usdt GİRİŞ 60000 stop 58000 hedef 65000",
    ):
        result = parse(text)
        assert result.kind == "signal", (text, result.reason)
        assert result.signal is not None
        assert (result.signal.entries, result.signal.stop_loss) == ((60000,), 58000)


def test_normalise_a_link_holding_a_foreign_word_leaves_nothing_behind() -> None:
    """A link's path is no word of the message: `entrada` in it once became an ENTRY label with the link's
    `1` as its price, and the signal was refused (`stop loss 58000 is above the entry 1`)."""
    for link in ("https://x.com/entrada/1", "www.example.com/compra/61000", "https://t.me/objetivos/2"):
        assert parse(f"{SIGNAL} {link}") == parse(SIGNAL), link
        assert normalise(link).strip() == "", link


def test_normalise_a_custom_emoji_named_like_a_word_leaves_no_digits() -> None:
    for emoji in ("<:compra:1234567>", "<a:largo:61000>", "<:entrada:58000>"):
        assert parse(f"{emoji} {SIGNAL}") == parse(SIGNAL), emoji
        assert not re.search(r"\d", normalise(emoji)), emoji
