"""The signal parser's building blocks: normalisation, label scanning, symbols and the named formats; and
the reading of management messages (issue #17: cues.py, clause_reading.py, management.py).

`hit_bot.parser` is the public face (`parse`, `ParseResult`, `PATTERNS`); these modules are its parts.
The vocabulary's environment variable and error are defined here, so that a program can name them before
it imports the parser (which reads the vocabulary file once, at import: see parsing/vocabulary.py).
"""

VOCABULARY_VARIABLE = "PARSER_VOCABULARY"


class VocabularyError(SystemExit):
    """A vocabulary file that can't be used: fix the file (the message names it and the problem).

    A SystemExit, so that a program that does not catch it (`python -m hit_bot.parser`, a script that
    imports the parser) ends with that one sentence on stderr and exit status 1, not a traceback of the
    import; the bot catches it to log it."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
