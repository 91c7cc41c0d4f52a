"""The state store: survives a restart, writes atomically, sets a corrupt file aside."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hit_bot import state as state_module
from hit_bot.state import StateStore


def test_state_remembers_across_instances(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.saw(1, 50)
    store.saw(1, 40)  # ids only move forward
    store.mark_sending("discord:1:50")
    store.mark_sending("discord:1:51")
    store.mark_answered("discord:1:50")
    store.set_event_cursor(7)
    again = StateStore(tmp_path)
    assert again.last_seen(1) == 50 and again.last_seen(2) is None
    assert again.send_state("discord:1:50") == "done"
    assert again.send_state("discord:1:51") == "pending"
    assert again.send_state("discord:1:52") is None
    assert again.event_cursor == 7
    assert [p.name for p in tmp_path.iterdir()] == ["bot-state.json"]  # no temp file left


def test_state_keeps_the_old_file_when_a_write_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = StateStore(tmp_path)
    store.saw(1, 10)

    def broken_dump(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(state_module.json, "dump", broken_dump)
    with pytest.raises(OSError, match="disk full"):
        store.saw(1, 11)
    monkeypatch.undo()
    assert json.loads((tmp_path / "bot-state.json").read_text())["last_seen"] == {"1": 10}
    assert [p.name for p in tmp_path.iterdir()] == ["bot-state.json"]


def test_state_sets_a_corrupt_file_aside_and_starts_afresh(tmp_path: Path) -> None:
    (tmp_path / "bot-state.json").write_text("{not json")
    store = StateStore(tmp_path)
    assert store.last_seen(1) is None
    assert (tmp_path / "bot-state.corrupt").read_text() == "{not json"


def test_state_forgets_the_oldest_signals_beyond_its_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state_module, "MAX_REMEMBERED_SIGNALS", 3)
    store = StateStore(tmp_path)
    for n in range(5):
        store.mark_sending(f"s:{n}")
    assert [store.send_state(f"s:{n}") for n in range(5)] == [None, None, "pending", "pending", "pending"]
