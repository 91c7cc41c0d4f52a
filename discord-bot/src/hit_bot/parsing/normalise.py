"""Turns a Discord message into plain upper-case text that the label scanner can read.

What is removed or rewritten, and why:
- Unicode compatibility forms (full-width `：`, `６０，０００`) become ASCII (NFKC); emoji variation
  selectors, zero-width characters and keycap marks (`1️⃣`) go, so `✖️SL` reads as `✖SL`.
- Discord markdown (`**`, `__`, `~~`, `||`, backticks, code fences, `>` quotes, `\\` escapes), tabs and
  `|` separators become nothing or a space; mentions, custom emoji, timestamps and links (which carry
  digits that are not prices) are removed.
- Commentary that is not a price: a parenthesised remark right after a number (`58000 (-6%)`),
  percentages (`Risk 1%`, `SIZE: 1-4%`), risk/reward ratios (`0.46 R:R`) and list indices (`1) 61000`).
- Thousands separators (`60,000` -> `60000`), but `145,150,160` stays a list: a price above a million
  written with a three-digit first group is far more likely a list without spaces.
Each step runs only when a cheap `in` test says it can apply, to keep the common path fast.
"""

from __future__ import annotations

import re
import unicodedata

# Invisible characters (variation selectors, zero-width, soft hyphen) go; a few look-alikes are mapped.
# Two regexes instead of str.translate with a dict, which is slow on emoji-laden (UCS-4) strings.
_INVISIBLE = re.compile("[\ufe0f\ufe0e\u200b\u200c\u200d\u2060\ufeff\u00ad]")
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
_SPACES = re.compile("[ ]{2,}")
# (character, replacement) pairs applied with str.replace after an `in` test: much faster than
# str.translate with a dict on the short messages that are the common case.
_MARKDOWN = (
    ("*", ""),
    ("`", ""),
    ("~", ""),
    ("\\", ""),
    ("_", " "),
    ("|", " "),
    ("\t", " "),
    ("\r", "\n"),
    (">", " "),
)
_KEYCAP = re.compile(r"[0-9#]?\u20e3")
_DISCORD_TOKEN = re.compile(r"<(?:@[!&]?|#|a?:\w{1,64}:|t:)?-?\d{1,25}(?::\w)?>")
_URL = re.compile(r"(?i)(?:https?://|www\.)\S*")
# The regexes below run over whole messages, so each starts with a literal or a character set (the
# engine then skips ahead in C); word-boundary tests come after the first character, as look-behinds.
_PAREN_AFTER_NUMBER = re.compile(r"([0-9])[ ]?\((?![ ]?[0-9]{1,3}(?:\.[0-9]+)?[ ]?X[ ]?\))[^()\n]{0,80}\)")
_PERCENT = re.compile(r"[-+0-9.][-0-9.~]*[ ]?%")
_RISK_REWARD = re.compile(
    r"[0-9][0-9.]*[ ]?(?:R[ ]?[:/]?[ ]?R|RRR)(?![A-Z])"
    r"|R(?<![A-Z0-9].)(?:[ ]?[:/][ ]?R|RR|R|ISK[ ]?(?:/|TO|-)?[ ]?REWARD(?:[ ]RATIO)?)(?![A-Z])[ ]?[:=]?[ ]?"
    r"(?:[0-9]+(?:\.[0-9]+)?(?:[ ]?[:/][ ]?[0-9]+(?:\.[0-9]+)?)?)?"
)
_RISK_REWARD_MARKERS = ("RR", "R:R", "R/R", "REWARD", "R : R")
_THOUSANDS = re.compile(r"([0-9](?<![0-9.,].)[0-9]{0,2})((?:,[0-9]{3})+)(?![0-9]|,[0-9])")
# `1) 61000`, `1. 61000`, `1: 61000`, `1 - 61000`, `#1 61000` at a line start; `2)` anywhere.
_LINE_INDEX = re.compile(r"\n[ ]?(?:[-+][ ]?)?#?[0-9]{1,2}(?:\)|\.(?=[ ])|:|[ ]-(?=[ ]))(?=[ ]?[0-9.])")
_INLINE_INDEX = re.compile(r"[0-9](?<![\w.(].)[0-9]?\)")


def _join_thousands(match: re.Match[str]) -> str:
    head, groups = match.group(1), match.group(2)
    if len(head) == 3 and groups.count(",") > 1:
        return match.group(0)
    return head + groups.replace(",", "")


def _unicode(text: str) -> str:
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    if _LOOK_ALIKE.search(text):
        text = text.translate(_LOOK_ALIKES)
    return _KEYCAP.sub(" ", text) if "\u20e3" in text else text


def _commentary(text: str) -> str:
    """Removes what sits beside prices without being one (see the module docstring)."""
    if "(" in text:
        text = _PAREN_AFTER_NUMBER.sub(r"\1 ", text)
    if "%" in text:
        text = _PERCENT.sub(" ", text)
    if "R" in text and any(marker in text for marker in _RISK_REWARD_MARKERS):
        text = _RISK_REWARD.sub(" ", text)
    if "," in text:
        text = _THOUSANDS.sub(_join_thousands, text)
    if ")" in text:
        text = _INLINE_INDEX.sub(" ", text)
    if "\n" in text:
        text = _LINE_INDEX.sub("\n ", text)
    return text


def normalise(text: str) -> str:
    """The message as upper-case plain text that starts with a newline (see the module docstring)."""
    if not text.isascii():
        text = _unicode(text)
    if "<" in text:
        text = _DISCORD_TOKEN.sub(" ", text)
    if "://" in text or "www." in text or "WWW." in text:
        text = _URL.sub(" ", text)
    for mark, replacement in _MARKDOWN:
        if mark in text:
            text = text.replace(mark, replacement)
    if "  " in text:
        text = _SPACES.sub(" ", text)
    return _commentary("\n" + text.upper())
