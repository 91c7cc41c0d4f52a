"""The signal parser's building blocks: normalisation, label scanning, symbols and the named formats.

`hit_bot.parser` is the public face (`parse`, `ParseResult`, `PATTERNS`); these modules are its parts.
"""
