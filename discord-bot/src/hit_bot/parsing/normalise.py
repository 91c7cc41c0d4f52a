"""Turns a Discord message into plain upper-case text that the label scanner can read.

What is removed or rewritten, and why:
- Unicode compatibility forms (full-width `：`, `６０，０００`) become ASCII (NFKC); emoji variation
  selectors, zero-width characters and keycap marks (`1️⃣`) go; the emoji that mean something (🎯 🛑 💰
  📈 📉 🟢 🔴...) become ASCII marks (`TARGET_MARK`...), every other non-ASCII character a space.
- Discord markdown (`**`, `__`, `~~`, `||`, backticks, code fences, `>` quotes, `\\` escapes), tabs and
  `|` separators become nothing or a space; mentions, custom emoji, timestamps and links (which carry
  digits that are not prices) are removed.
- Commentary that is not a price: a parenthesised remark right after a number (`58000 (-6%)`),
  percentages (`Risk 1%`, `SIZE: 1-4%`), risk/reward ratios (`0.46 R:R`) and list indices (`1) 61000`).
- Thousands separators (`60,000` -> `60000`), but `145,150,160` stays a list (a price above a million
  written with a three-digit first group is far more likely a list without spaces) and `0,512` is
  left alone (a decimal comma, never a thousands separator; it then reads as two prices and fails).
"""

from __future__ import annotations

import re
import unicodedata

from hit_bot.parsing.vocabulary import VOCABULARY, recased

# Invisible characters (variation selectors, zero-width, soft hyphen) go; a few look-alikes are mapped;
# every other non-ASCII character but the emoji that mean something becomes a space.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad"  # removed; variation selectors become spaces
_LOOK_ALIKES = str.maketrans(
    {
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2212", "-"),
        **dict.fromkeys("\u2022\u00b7\u2219\u2192\u27a1\u21d2\u25ba", " "),
        **dict.fromkeys("\u2028\u2029\u0085\u000b\u000c", "\n"),
    }
)
# The emoji that mean something become ASCII control characters (those of the input are blanked first),
# so that the normalised text is plain ASCII.
TARGET_MARK, STOP_MARK, ENTRY_MARK = "\x11", "\x12", "\x13"
UP_MARK, DOWN_MARK, GREEN_MARK, RED_MARK = "\x14", "\x15", "\x16", "\x17"
CHECK_MARK = "\x18"  # ✅ ✔ ☑: beside a target or a stop it reports a result
_EMOJI_MARKS = {
    "🎯": TARGET_MARK,
    "🛑": STOP_MARK,
    "⛔": STOP_MARK,
    "💰": ENTRY_MARK,
    "📈": UP_MARK,
    "⬆": UP_MARK,
    "📉": DOWN_MARK,
    "⬇": DOWN_MARK,
    "🟢": GREEN_MARK,
    "🟩": GREEN_MARK,
    "🔴": RED_MARK,
    "🟥": RED_MARK,
    "✅": CHECK_MARK,
    "✔": CHECK_MARK,
    "☑": CHECK_MARK,
}
_KEPT = f"\\t\\n\\r\\x20-\\x7e{''.join(_EMOJI_MARKS)}"
_FOREIGN = re.compile(f"[^{_KEPT}]+")  # also ASCII control characters
_CONTROL = re.compile("[\\x00-\\x08\\x0e-\\x1f\\x7f]")
_SPACES = re.compile("[ ]{2,}")
# Discord markdown, tabs and separators: `*` `` ` `` `~` `\\` go; `_` `|` `>` and tabs become spaces; `\r` a
# newline.
_MARKDOWN = str.maketrans({**dict.fromkeys("*`~\\", None), **dict.fromkeys("_|>\t", " "), "\r": "\n"})
_KEYCAP = re.compile(r"[0-9#]?\u20e3")
_DISCORD_TOKEN = re.compile(r"<(?:@[!&]?|#|a?:\w{1,64}:|t:)?-?\d{1,25}(?::\w)?>")
_URL = re.compile(r"(?i)(?:https?://|www\.)\S*")
# A remark in brackets right after a number (`58000 (-6%)`), but not a leverage (`(10x)`).
_PAREN_AFTER_NUMBER = re.compile(
    r"(?:(?<=[0-9])|(?<=[0-9][ ]))\((?![ ]?[0-9]{1,3}(?:\.[0-9]+)?[ ]?X[ ]?\))[^()\n]{0,80}\)"
)
_PERCENT_CHARS = "0123456789.-+~"
# `0.46 R:R` (a ratio before the mark), then `R:R 1:3` / `Risk/Reward: 2.5` (a label and its ratio).
_RATIO_MARK = re.compile(r"(?<![A-Z0-9])R(?:[ ]?[:/][ ]?R|RR?)(?![A-Z0-9])")
_RATIO_CHARS = "0123456789."
_RATIO_LABEL = re.compile(
    r"(?<![A-Z0-9])R(?:[ ]?[:/][ ]?R|RR|R|ISK[ ]?(?:/|TO|-)?[ ]?REWARD(?:[ ]RATIO)?)(?![A-Z])[ ]?[:=]?[ ]?"
    r"(?:[0-9]+(?:\.[0-9]+)?(?:[ ]?[:/][ ]?[0-9]+(?:\.[0-9]+)?)?)?"
)
_THOUSANDS = re.compile(r"(?<![0-9.,])([0-9]{1,3})((?:,[0-9]{3})+)(?![0-9]|,[0-9])")
# `1) 61000`, `1. 61000`, `1: 61000`, `1 - 61000`, `#1 61000` at a line start; `2)` anywhere.
_LINE_INDEX = re.compile(r"\n[ ]?(?:[-+][ ]?)?#?[0-9]{1,2}(?:\)|\.(?=[ ])|:|[ ]-(?=[ ]))(?=[ ]?[0-9.])")
_INLINE_INDEX = re.compile(r"(?<![\w.(])[0-9]{1,2}\)")
# A decimal comma, never a thousands separator: `0,415` (a leading zero), `14,85` (one or two digits after
# the comma) or `1,2345` (four or more after one or two before). `1,234` stays a thousands separator (1234),
# as `60,000` is; `3300,3400` is left alone: one price or two, it is refused (parsing/checks.py).
_DECIMAL_COMMA = re.compile(
    r"(?<![0-9.,])(0|[0-9]+(?=,[0-9]{1,2}(?![0-9,]))|[0-9]{1,2}(?=,[0-9]{4,}(?![0-9,]))),([0-9]+)(?![0-9,])"
)


def _join_thousands(match: re.Match[str]) -> str:
    head, groups = match.group(1), match.group(2)
    if head[0] == "0" or (len(head) == 3 and groups.count(",") > 1):
        return match.group(0)  # `0,512` is a decimal comma; `145,150,160` a list
    return head + groups.replace(",", "")


# Label and direction words of other languages (parsing/vocabulary.toml, and the user's PARSER_VOCABULARY
# file), rewritten as the English words the scanner reads. They are matched on the message in upper case.
# One pattern finds the words; the English word of a match is that of the first word that matches it whole.
_FOREIGN_WORDS = tuple((recased(word, str.upper), english) for word, english in VOCABULARY.translations)


def _one_pattern(words: list[str]) -> str:
    """One regex of every word, tried in order. Words in a row that start with `\\b` share it
    (`\\b(?:A|B)` for `\\bA|\\bB`): the same matches, but the boundary is tested once at each place of
    the message instead of once per word (the Spanish and Portuguese words all start with it)."""
    parts: list[str] = []
    bounded: list[str] = []
    for word in [*words, ""]:  # the empty word ends the last run
        if word.startswith("\\b"):
            bounded.append(f"(?:{word[2:]})")
            continue
        if bounded:
            parts.append(f"\\b(?:{'|'.join(bounded)})")
            bounded = []
        if word:
            parts.append(f"(?:{word})")
    return "|".join(parts)


_FOREIGN_WORD = re.compile(_one_pattern([word for word, _english in _FOREIGN_WORDS]))
_EACH_WORD = tuple((re.compile(word), english) for word, english in _FOREIGN_WORDS)


def _english(match: re.Match[str]) -> str:
    found = match.group(0)
    return next((f" {english} " for word, english in _EACH_WORD if word.fullmatch(found)), " ")


def _unicode(text: str) -> str:
    """Non-ASCII text as ASCII: compatibility forms, invisible characters, look-alikes, emoji marks."""
    text = unicodedata.normalize("NFKC", text)
    if "\u20e3" in text:  # a keycap (`1️⃣`) goes whole, its variation selector with it
        text = _KEYCAP.sub(" ", text.replace("\ufe0f", ""))
    for invisible in _INVISIBLE:
        text = text.replace(invisible, "")
    text = text.translate(_LOOK_ALIKES)
    text = _FOREIGN.sub(" ", text)
    for emoji, mark in _EMOJI_MARKS.items():
        text = text.replace(emoji, mark)
    return text


def _drop_ratio_values(text: str) -> str:
    """`TP1: 0.46 R:R`: the number before a risk/reward mark is a ratio, not a price."""
    for mark in reversed(list(_RATIO_MARK.finditer(text))):
        end = mark.start() - 1 if text[mark.start() - 1] == " " else mark.start()
        start = len(text[:end].rstrip(_RATIO_CHARS))  # the text starts with a newline: never empty
        if start < end and text[start - 1] != ":":
            text = f"{text[:start]} {text[mark.end() :]}"
    return text


def _drop_percentages(text: str) -> str:
    """`Risk 1%`, `(-6%)`, `SIZE: 1-4%`: read backwards from each `%` (a regex would try every digit)."""
    at = text.rfind("%")
    while at >= 0:
        start = at - 1 if at and text[at - 1] == " " else at
        start = len(text[:start].rstrip(_PERCENT_CHARS))
        text = f"{text[:start]} {text[at + 1 :]}"
        at = text.rfind("%", 0, start)
    return text


def drop_commentary(text: str) -> str:
    """Removes what sits beside prices without being one (see the module docstring) from text normalised
    with `keep_commentary`: `normalise(t) == drop_commentary(normalise(t, keep_commentary=True))`."""
    text = _PAREN_AFTER_NUMBER.sub(" ", text)
    text = _drop_percentages(text)
    text = _drop_ratio_values(text)
    text = _RATIO_LABEL.sub(" ", text)
    text = _DECIMAL_COMMA.sub(r"\1.\2", text)
    text = _THOUSANDS.sub(_join_thousands, text)
    text = _INLINE_INDEX.sub(" ", text)
    return _LINE_INDEX.sub("\n ", text)


# `Buy: 0.10` ... `Sell: 0.12 - 0.13`: a spot channel's layout, BUY and SELL as labels with a colon.
_BUY_SELL_LABEL = re.compile(r"(?<![A-Z0-9])(BUY|SELL)[ ]?:")


def _buy_sell_labels(text: str) -> str:
    """With exactly one `BUY:` and one `SELL:` label, the first is the entry and says the direction, the
    second gives the targets: `BUY: 0.10 SELL: 0.12` reads as `LONG ENTRY: 0.10 TP: 0.12`. Any other use
    of the two words is left as it is (both together then give two directions, which is refused)."""
    found = list(_BUY_SELL_LABEL.finditer(text))
    if sorted(label[1] for label in found) != ["BUY", "SELL"]:
        return text
    first, second = found
    side = "LONG" if first[1] == "BUY" else "SHORT"
    return (
        f"{text[: first.start()]}{side} ENTRY:{text[first.end() : second.start()]}TP:{text[second.end() :]}"
    )


def normalise(text: str, *, keep_commentary: bool = False) -> str:
    """The message as upper-case ASCII text that starts with a newline (see the module docstring).

    `keep_commentary` keeps what `drop_commentary` would remove (`(breakout)`, `5%`): for the checks that
    must see those words before they are dropped."""
    # Mentions and links first: their names and paths are no words of the message.
    text = _URL.sub(" ", _DISCORD_TOKEN.sub(" ", unicodedata.normalize("NFKC", text))).upper()
    if _FOREIGN_WORDS:  # a user's words may be ASCII (`[translations.english] long = ["BULLISH"]`)
        text = _FOREIGN_WORD.sub(_english, text)
    text = _CONTROL.sub(" ", text)
    if not text.isascii():
        text = _unicode(text)
    text = text.translate(_MARKDOWN)
    text = _buy_sell_labels(_SPACES.sub(" ", text).replace(" \n", "\n"))
    return "\n" + text if keep_commentary else drop_commentary("\n" + text)
