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
Each step runs only when a cheap `in` test says it can apply, to keep the common path fast.
"""

from __future__ import annotations

import re
import unicodedata

from hit_bot.parsing.vocabulary import VOCABULARY

# `(?:X|)` is `(?:X)?` written as a branch, which the regex engine runs faster (see parsing/scan.py).
# Invisible characters (variation selectors, zero-width, soft hyphen) go; a few look-alikes are mapped;
# every other non-ASCII character but the emoji that mean something becomes a space.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad"  # removed; variation selectors become spaces
_LOOK_ALIKE = re.compile(
    "[\u2010-\u2014\u2212\u2022\u00b7\u2219\u2192\u27a1\u21d2\u25ba\u2028\u2029\u0085\u000b\u000c]"
)
_LOOK_ALIKES = str.maketrans(
    {
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2212", "-"),
        **dict.fromkeys("\u2022\u00b7\u2219\u2192\u27a1\u21d2\u25ba", " "),
        **dict.fromkeys("\u2028\u2029\u0085\u000b\u000c", "\n"),
    }
)
# The emoji that mean something become ASCII control characters (stripped from the input first), so
# the normalised text is plain ASCII, which every later step handles faster.
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
_FOREIGN = re.compile(f"[^{_KEPT}][^{_KEPT}]*")  # also ASCII control characters
_CONTROL = re.compile("[\\x00-\\x08\\x0e-\\x1f\\x7f]")
_SPACES = re.compile("  [ ]*")
# Discord markdown, tabs and separators (`*` `` ` `` `~` `\\` go; `_` `|` `>` tabs become spaces; `\r` a
# newline), and upper case, in one bytes.translate pass over the ASCII text that the steps before leave:
# one C loop instead of a str.replace and an `in` test per character.
_MARKDOWN_GONE = b"*`~\\"
_MARKDOWN_UPPER = bytes.maketrans(b"_|\t\r>abcdefghijklmnopqrstuvwxyz", b"   \n ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_KEYCAP = re.compile(r"[0-9#]?\u20e3")
_DISCORD_TOKEN = re.compile(r"<(?:@[!&]?|#|a?:\w{1,64}:|t:|)-?\d{1,25}(?::\w|)>")
_URL = re.compile(r"(?i)(?:https?://|www\.)\S*")
# The regexes below run over whole messages, so each starts with a literal or a character set (the
# engine then skips ahead in C); word-boundary tests come after the first character, as look-behinds.
_PAREN_AFTER_NUMBER = re.compile(
    r"\((?:(?<=[0-9]\()|(?<=[0-9][ ]\())(?![ ]?[0-9]{1,3}(?:\.[0-9]+|)[ ]?X[ ]?\))[^()\n]{0,80}\)"
)
_PERCENT_CHARS = "0123456789.-+~"
# `0.46 R:R` (a ratio before the mark), then `R:R 1:3` / `Risk/Reward: 2.5` (a label and its ratio).
_RATIO_MARK = re.compile(r"R(?<![A-Z0-9].)(?:[ ]?[:/][ ]?R|RR?)(?![A-Z0-9])")
_RATIO_CHARS = "0123456789."
_RATIO_LABEL = re.compile(
    r"R(?<![A-Z0-9].)(?:[ ]?[:/][ ]?R|RR|R|ISK[ ]?(?:/|TO|-|)[ ]?REWARD(?:[ ]RATIO|))(?![A-Z])[ ]?[:=]?[ ]?"
    r"(?:[0-9]+(?:\.[0-9]+|)(?:[ ]?[:/][ ]?[0-9]+(?:\.[0-9]+|)|)|)"
)
_RISK_REWARD_MARKERS = ("RR", "R:R", "R/R", "REWARD", "R : R")
_RISK_REWARD_MARKER = re.compile("|".join(re.escape(marker) for marker in _RISK_REWARD_MARKERS))
_THOUSANDS = re.compile(r"([0-9](?<![0-9.,].)[0-9]{0,2})((?:,[0-9]{3})+)(?![0-9]|,[0-9])")
# `1) 61000`, `1. 61000`, `1: 61000`, `1 - 61000`, `#1 61000` at a line start; `2)` anywhere.
_LINE_INDEX = re.compile(r"\n[ ]?(?:[-+][ ]?|)#?[0-9]{1,2}(?:\)|\.(?=[ ])|:|[ ]-(?=[ ]))(?=[ ]?[0-9.])")
# The characters a line that starts with an index (_LINE_INDEX) can start with.
_LINE_INDEX_STARTS = " -+#0123456789"
_INLINE_INDEX = re.compile(r"[0-9](?<![\w.(].)[0-9]?\)")
_DIGIT_PAREN = re.compile(r"\)(?<=[0-9]\))")
_COMMA_DIGIT = re.compile(r",(?=[0-9])")
# A decimal comma, never a thousands separator: `0,415` (a leading zero) or `14,85` (not three digits after
# the comma). `1,234` stays a thousands separator (1234), as `60,000` is.
_DECIMAL_COMMA = re.compile(
    r"(?<![0-9.,])(0|[0-9]+(?=,(?:[0-9]{1,2}|[0-9]{4,})(?![0-9,]))),([0-9]+)(?![0-9,])"
)


def _join_thousands(match: re.Match[str]) -> str:
    head, groups = match.group(1), match.group(2)
    if head[0] == "0" or (len(head) == 3 and groups.count(",") > 1):
        return match.group(0)  # `0,512` is a decimal comma; `145,150,160` a list
    return head + groups.replace(",", "")


# Label and direction words of other languages (parsing/vocabulary.toml, and the user's PARSER_VOCABULARY
# file), rewritten as the English words the scanner reads.
# One pattern finds the words (without groups, which the regex engine runs several times faster); the
# English word of a match is that of the first word that matches it whole.
_FOREIGN_WORDS = VOCABULARY.translations
_FOREIGN_WORD = re.compile("|".join(f"(?:{word})" for word, _english in _FOREIGN_WORDS), re.IGNORECASE)
_EACH_WORD = tuple((re.compile(word, re.IGNORECASE), english) for word, english in _FOREIGN_WORDS)


def _english(match: re.Match[str]) -> str:
    found = match.group(0)
    return next((f" {english} " for word, english in _EACH_WORD if word.fullmatch(found)), " ")


def _unicode(text: str) -> str:
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    if "\u20e3" in text:
        text = _KEYCAP.sub(" ", text.replace("\ufe0f", ""))
    for invisible in _INVISIBLE:
        if invisible in text:
            text = text.replace(invisible, "")
    if _LOOK_ALIKE.search(text):
        text = text.translate(_LOOK_ALIKES)
    text = _FOREIGN.sub(" ", text)
    if not text.isascii():
        for emoji, mark in _EMOJI_MARKS.items():
            if emoji in text:
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


def _has_ratio_marker(text: str) -> bool:
    """_RISK_REWARD_MARKER.search(text), as substring tests (a regex call costs more than all of them)."""
    return "RR" in text or "R:R" in text or "R/R" in text or "REWARD" in text or "R : R" in text


def _commentary(text: str) -> str:
    """Removes what sits beside prices without being one (see the module docstring)."""
    if "(" in text:
        text = _PAREN_AFTER_NUMBER.sub(" ", text)
    if "%" in text:
        text = _drop_percentages(text)
    if "R" in text and _has_ratio_marker(text):
        text = _drop_ratio_values(text)
        if _RISK_REWARD_MARKER.search(text):
            text = _RATIO_LABEL.sub(" ", text)
    if "," in text and _COMMA_DIGIT.search(text):
        text = _DECIMAL_COMMA.sub(r"\1.\2", text)
        text = _THOUSANDS.sub(_join_thousands, text)
    if ")" in text and _DIGIT_PAREN.search(text):
        text = _INLINE_INDEX.sub(" ", text)
    if text[1:2] in _LINE_INDEX_STARTS or text.find("\n", 1) >= 0:  # a line after the first, or the first
        text = _LINE_INDEX.sub("\n ", text)
    return text


def normalise(text: str, *, keep_commentary: bool = False) -> str:
    """The message as upper-case ASCII text that starts with a newline (see the module docstring).

    `keep_commentary` keeps what `_commentary` would remove (`(breakout)`, `5%`): for the checks that
    must see those words before they are dropped."""
    if _FOREIGN_WORDS:  # a user's words may be ASCII (`[translations.english] long = ["BULLISH"]`)
        if not text.isascii() and not unicodedata.is_normalized("NFKC", text):
            text = unicodedata.normalize("NFKC", text)
        text = _FOREIGN_WORD.sub(_english, text)
    if not text.isascii():
        text = _unicode(text)
    elif not text.isprintable() and _CONTROL.search(text):  # ASCII: printable means no control character
        text = _CONTROL.sub(" ", text)
    if "<" in text:
        text = _DISCORD_TOKEN.sub(" ", text)
    if ("/" in text and "://" in text) or "www." in text or "WWW." in text:
        text = _URL.sub(" ", text)
    # Every step above leaves ASCII text (_unicode maps or blanks every other character).
    text = text.encode("ascii").translate(_MARKDOWN_UPPER, _MARKDOWN_GONE).decode("ascii")
    if "  " in text:
        text = _SPACES.sub(" ", text)
    if " \n" in text:
        text = text.replace(" \n", "\n")
    return "\n" + text if keep_commentary else _commentary("\n" + text)
