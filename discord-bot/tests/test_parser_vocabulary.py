"""The parser's words come from a data file a user can extend without Python (issue #14): the shipped
parsing/vocabulary.toml, and a user file named by PARSER_VOCABULARY merged over it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hit_bot.parser import parse
from hit_bot.parsing.vocabulary import ENVIRONMENT_VARIABLE, LABEL_KINDS, VocabularyError, load

KINDS = ", ".join(LABEL_KINDS)

_PARSE = (
    "import json, sys\n"
    "from hit_bot.parser import parse\n"
    "result = parse(sys.argv[1])\n"
    "print(json.dumps([result.kind, result.reason, result.signal and result.signal.model_dump(mode='json')]))"
)


def _parse_with(vocabulary: Path, text: str) -> subprocess.CompletedProcess[str]:
    """Parses `text` in a fresh interpreter whose PARSER_VOCABULARY names `vocabulary` (it is read at
    import, so a process of its own is the way to see it)."""
    env = {**os.environ, ENVIRONMENT_VARIABLE: str(vocabulary)}
    return subprocess.run(  # noqa: S603 (our own interpreter, fixed arguments)
        [sys.executable, "-c", _PARSE, text], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_vocabulary_user_label_word_makes_a_message_parse(tmp_path: Path) -> None:
    text = "LONG BTC-USDT Entry: 60000 SL: 58000 Ziel: 65000"
    assert parse(text).kind == "invalid"  # without the word: no target
    user = tmp_path / "words.toml"
    user.write_text('[labels]\ntarget = ["Ziel"]\n', encoding="utf-8")
    done = _parse_with(user, text)
    assert done.returncode == 0, done.stderr
    kind, _reason, signal = json.loads(done.stdout)
    assert kind == "signal"
    assert signal["take_profits"] == ["65000"]


def test_vocabulary_user_translation_withdraws_a_signal(tmp_path: Path) -> None:
    text = "LONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000 - storniert"
    assert parse(text).kind == "signal"  # without the word: traded
    user = tmp_path / "words.toml"
    user.write_text('[translations.german]\ncancel = ["storniert"]\n', encoding="utf-8")
    done = _parse_with(user, text)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0] == "not_signal"


def test_vocabulary_user_translation_keeps_its_escapes_whatever_its_case(tmp_path: Path) -> None:
    """Words are matched in any case by putting both in one case: `\\s` must stay a blank, never become
    `\\S`, and a lower-case word must find an upper-case one."""
    text = "LONG BTC-USDT Entry: 60000 VERLUST   GRENZE: 58000 TP: 65000"
    assert parse(text).kind == "invalid"  # without the word: no stop loss
    user = tmp_path / "words.toml"
    user.write_text('[translations.german]\nstop = ["verlust\\\\s+grenze"]\n', encoding="utf-8")
    done = _parse_with(user, text)
    assert done.returncode == 0, done.stderr
    kind, reason, signal = json.loads(done.stdout)
    assert kind == "signal", reason
    assert signal["stop_loss"] == "58000"


def test_vocabulary_user_words_are_added_in_front_of_the_shipped_ones(tmp_path: Path) -> None:
    user = tmp_path / "words.toml"
    user.write_text('[labels]\nstop = ["Verlust"]\n', encoding="utf-8")
    words = load(str(user))
    assert words.labels["stop"][0] == "VERLUST"
    assert words.labels["stop"][1:] == load().labels["stop"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[labels\ntarget = 1", "not valid TOML"),
        ('[labels]\nprofit = ["ZIEL"]\n', "labels.profit is not a kind"),
        ('[labels]\ntarget = "ZIEL"\n', "labels.target must be a list of non-empty strings"),
        ('[labels]\ntarget = ["ZIEL(("]\n', "is not a valid regular expression"),
        ('[labels]\nstop = ["-SL"]\n', "must start with a letter"),
        ('[labels]\nentry = ["GİRİŞ"]\n', "is not ASCII; put words of other languages under [translations]"),
        ('[translations.german]\nbuy = ["KAUFEN"]\n', "translations.german.buy: buy is not a kind"),
        ('[words]\ntarget = ["ZIEL"]\n', "[words] is not a section"),
        ('[management.german]\nshut = ["zu"]\n', "management.german.shut: shut is not a kind"),
        ('[management.german]\nclose = ["(("]\n', "is not a valid regular expression"),
        ('[management]\nclose = ["x"]\n', "[management] must hold one table per language"),
        ('[translations.german]\ncancel = ["(?i)storniert"]\n', "leave out inline flags like (?i)"),
        ('[management.german]\nclose = ["(?i)schliessen"]\n', "leave out inline flags like (?i)"),
    ],
)
def test_vocabulary_bad_user_file_names_the_file_and_the_problem(
    tmp_path: Path, content: str, problem: str
) -> None:
    user = tmp_path / "words.toml"
    user.write_text(content, encoding="utf-8")
    with pytest.raises(VocabularyError) as error:
        load(str(user))
    assert str(error.value).startswith(f"vocabulary file {user}: ")
    assert problem in str(error.value)


def test_vocabulary_missing_user_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    with pytest.raises(VocabularyError, match=r"absent\.toml: can.t be read"):
        load(str(missing))


def test_vocabulary_bad_user_file_stops_the_parser_from_loading(tmp_path: Path) -> None:
    user = tmp_path / "words.toml"
    user.write_text('[labels]\nprofit = ["ZIEL"]\n', encoding="utf-8")
    done = _parse_with(user, "LONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000")
    assert done.returncode == 1
    assert done.stderr == f"vocabulary file {user}: labels.profit is not a kind (kinds: {KINDS})\n"


def test_vocabulary_bad_user_file_is_one_sentence_from_the_parser_command(tmp_path: Path) -> None:
    user = tmp_path / "words.toml"
    user.write_text("[labels\n", encoding="utf-8")
    env = {**os.environ, ENVIRONMENT_VARIABLE: str(user)}
    done = subprocess.run(
        [sys.executable, "-m", "hit_bot.parser", "LONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"vocabulary file {user}: not valid TOML")
    assert done.stderr.count("\n") == 1


def test_vocabulary_user_management_word_is_read(tmp_path: Path) -> None:
    """Management words of a language the shipped file lacks (issue #17), added without Python."""
    text = "Position jetzt schließen"
    assert parse(text).kind == "not_signal"  # without the word: nothing to read
    user = tmp_path / "words.toml"
    user.write_text('[management.german]\nclose = ["schlie(?:ß|ss)en"]\n', encoding="utf-8")
    env = {**os.environ, ENVIRONMENT_VARIABLE: str(user)}
    script = "import sys\nfrom hit_bot.parser import parse\nr = parse(sys.argv[1])\n"
    script += "print(r.kind, r.management.action)"
    done = subprocess.run(  # noqa: S603 (our own interpreter, fixed arguments)
        [sys.executable, "-c", script, text], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["management", "close"]
