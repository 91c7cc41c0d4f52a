"""What a new user hit with ./run.sh (issue #13): the port in trading-server/.env, and Ctrl+C.

The launcher and hitctl are stdlib-only scripts in tools/, imported by path as the other tools tests do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hit_server.settings import Settings
from hit_server.testing import free_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import launcher  # noqa: E402

SERVER_KEYS = ("PORT", "HOST")


@pytest.fixture
def server_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty trading-server folder, and no HOST / PORT in this process's environment."""
    for name in list(os.environ):
        if name.upper() in SERVER_KEYS:
            monkeypatch.delenv(name)
    folder = tmp_path / "trading-server"
    folder.mkdir()
    return folder


def the_servers_port(env_file: Path) -> int:
    """The port the trading server's own settings pick (the environment as the test left it)."""
    return Settings(_env_file=env_file).port


@pytest.mark.parametrize(
    ("env_file_text", "environ", "expected"),
    [
        ("", {}, 8000),
        ("PORT=9123\n", {}, 9123),
        ("# the API\nexport PORT = 9124  # moved off 8000\n", {}, 9124),
        ('PORT="9125"\nHOST=127.0.0.1\n', {}, 9125),
        ("PORT=9126\nport=9127\n", {}, 9127),
        ("PORT=9128\n", {"PORT": "9200"}, 9200),
        ("", {"PORT": "9201"}, 9201),
    ],
)
def test_server_url_uses_the_port_the_server_settings_pick(
    server_dir: Path, monkeypatch: pytest.MonkeyPatch, env_file_text: str, environ: dict[str, str],
    expected: int,
) -> None:
    env_file = server_dir / ".env"
    env_file.write_text(env_file_text)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert the_servers_port(env_file) == expected
    assert launcher.server_url(environ, server_dir) == f"http://127.0.0.1:{expected}"


def test_server_url_asks_loopback_when_the_server_listens_everywhere(server_dir: Path) -> None:
    (server_dir / ".env").write_text("HOST=0.0.0.0\nPORT=9300\n")
    assert launcher.server_url({}, server_dir) == "http://127.0.0.1:9300"
    assert launcher.server_url({"HOST": "10.1.2.3"}, server_dir) == "http://10.1.2.3:9300"


def test_bot_env_points_the_bot_at_the_server_unless_the_user_chose_a_url(tmp_path: Path) -> None:
    bot_dir = tmp_path / "discord-bot"
    bot_dir.mkdir()
    assert launcher.bot_env({}, bot_dir, "http://127.0.0.1:9400")["TRADING_SERVER_URL"] == "http://127.0.0.1:9400"
    mine = {"TRADING_SERVER_URL": "http://10.0.0.5:8000"}
    assert launcher.bot_env(mine, bot_dir, "http://127.0.0.1:9400") == mine
    (bot_dir / ".env").write_text("TRADING_SERVER_URL=https://vps.example:8443\n")
    assert "TRADING_SERVER_URL" not in launcher.bot_env({}, bot_dir, "http://127.0.0.1:9400")


FAKE_SERVICES = '''\
import http.server, json, os, sys
from pathlib import Path

if sys.argv[1:3] == ["-m", "hit_bot"]:  # the bot: say where it was told the server is, and stop
    Path({report!r}).write_text(os.environ.get("TRADING_SERVER_URL", "unset"))
    sys.exit(3)


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({{"status": "ok"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)


http.server.HTTPServer(("127.0.0.1", {port}), Health).serve_forever()
'''


def test_run_all_waits_for_the_port_of_trading_server_env_and_starts_the_bot(tmp_path: Path) -> None:
    """PORT only in trading-server/.env: the launcher finds the server there, starts the bot, and
    tells the bot where the server is (before: it asked port 8000 for 90 s and gave up)."""
    port, report = free_port(), tmp_path / "bot-was-told.txt"
    (tmp_path / "trading-server").mkdir()
    (tmp_path / "discord-bot").mkdir()
    (tmp_path / "trading-server" / ".env").write_text(f"PORT={port}\n")
    services = tmp_path / "services.py"
    services.write_text(FAKE_SERVICES.format(report=str(report), port=port))
    python = tmp_path / "python"  # what run_all takes for the environment's python: both services in one
    python.write_text(f"#!{sys.executable}\nexec(open({str(services)!r}).read())\n")
    python.chmod(0o755)
    environ = {k: v for k, v in os.environ.items() if k.upper() not in {*SERVER_KEYS, "TRADING_SERVER_URL"}}
    started = time.monotonic()
    assert launcher.run_all(python, tmp_path, environ) == 3  # the bot's exit: it was started
    assert time.monotonic() - started < launcher.HEALTH_TIMEOUT_S / 3
    assert report.read_text() == f"http://127.0.0.1:{port}"


FAKE_SERVICE_PYTHON = '''\
#!{python}
"""Stands in for `.venv/bin/python -m hit_server`: up until SIGINT, then a shutdown that takes a while."""
import signal, sys, time
from pathlib import Path

stopping = []
signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
Path({ready!r}).write_text("up")
while not stopping:
    time.sleep(0.01)
time.sleep(1.0)  # saving state: longer than the quarter second subprocess.call gives before its kill
Path({stopped!r}).write_text("stopped cleanly")
'''

DRIVER = '''\
import signal, sys
from pathlib import Path
# A terminal's foreground job takes Ctrl+C. This test may itself run in a shell's background job, whose
# SIGINT is ignored and would stay ignored here (an ignored signal survives exec): take it back.
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {tools!r})
import hitctl
hitctl.setup = lambda: Path({python!r})  # the environment is there; only the service is a stand-in
sys.exit(hitctl.cli([{command!r}]))
'''


@pytest.mark.skipif(os.name == "nt", reason="a console's Ctrl+C is a POSIX process-group SIGINT here")
@pytest.mark.parametrize("command", ["server", "bot"])
def test_hitctl_ctrl_c_stops_the_service_cleanly_without_traceback(tmp_path: Path, command: str) -> None:
    ready, stopped = tmp_path / "ready", tmp_path / "stopped"
    fake_python = tmp_path / "python"
    fake_python.write_text(FAKE_SERVICE_PYTHON.format(python=sys.executable, ready=str(ready),
                                                      stopped=str(stopped)))
    fake_python.chmod(0o755)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(tools=str(ROOT / "tools"), python=str(fake_python), command=command))
    proc = subprocess.Popen(
        [sys.executable, str(driver)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # a process group of its own, like a terminal's foreground job
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the service never started"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl+C in a terminal does
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert (out + err).strip().splitlines() == ["[hit] stopped (Ctrl+C)"]
    assert proc.returncode == 130
    assert stopped.read_text() == "stopped cleanly"  # waited for its shutdown, did not kill it


def test_hitctl_cli_turns_ctrl_c_anywhere_into_one_line_and_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl+C during setup, the demo or the tests: the same one line, never a traceback."""
    import hitctl

    def interrupted(argv: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(hitctl, "main", interrupted)
    assert hitctl.cli(["demo"]) == 130
    assert capsys.readouterr().out == "[hit] stopped (Ctrl+C)\n"


def trade(signal_id: str, symbol: str, *entry_types: str) -> dict[str, object]:
    """A placed signal as GET /api/v1/signals lists it (only the fields the summary reads)."""
    orders = [{"role": "entry", "type": kind} for kind in entry_types]
    orders.append({"role": "stop_loss", "type": "trigger"})
    return {"signal_id": signal_id, "symbol": symbol, "status": "placed", "orders": orders,
            "created_at": f"2026-01-01T00:00:0{signal_id[-1]}Z"}


def test_placed_signals_tells_open_positions_from_resting_limit_entries_and_ended_trades() -> None:
    trades = [
        trade("s1", "SOL-USDT", "market"),
        trade("s2", "BTC-USDT", "limit"),
        trade("s3", "DOGE-USDT", "limit", "limit", "limit"),  # a zone's ladder is one signal
        trade("s4", "XRP-USDT", "limit", "limit"),  # partly filled: open
        trade("s5", "ETH-USDT", "limit"),  # its entries expired
        trade("s6", "LTC-USDT", "market"),  # closed
    ]
    positions = [{"instId": "SOL-USDT"}, {"instId": "XRP-USDT"}]
    events = [{"type": "placed", "signal_id": "s5"}, {"type": "entries_expired", "signal_id": "s5"},
              {"type": "closed", "signal_id": "s6"}]
    sorted_out = launcher.placed_signals(trades, positions, events)
    assert sorted_out == launcher.PlacedSignals(
        open=["SOL-USDT", "XRP-USDT"], waiting=["BTC-USDT", "DOGE-USDT"], ended=["ETH-USDT", "LTC-USDT"])
    assert sorted_out.sentence() == (
        "6 placed signals: 2 with an open position (SOL-USDT, XRP-USDT); 2 waiting on resting limit entries "
        "that fill when the price reaches them (BTC-USDT, DOGE-USDT); 2 already ended (ETH-USDT, LTC-USDT)")


DEMO_SIGNALS = """\
<!-- examples -->
```signal
LONG SOL-USDT Entry: market SL: 145 TP: 156
```

```signal
LONG BTC-USDT Entry: 58000 SL: 56000 TP: 62000
```

```signal
LONG DOGE-USDT Entry zone: 0.147-0.146 SL: 0.140 TP: 0.155
```
"""


def test_demo_summary_says_which_placed_signals_wait_on_resting_limit_entries(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The real demo (server in paper mode, the bot's replay) on three signals: one at market, two limits
    below the price. Before, it said only `open_positions=1`."""
    (tmp_path / "TEST_SIGNALS.md").write_text(DEMO_SIGNALS)
    assert launcher.demo(Path(sys.executable), tmp_path) == 0
    out = capfd.readouterr().out
    assert "open_positions=1" in out
    assert ("[hit] 3 placed signals: 1 with an open position (SOL-USDT); 2 waiting on resting limit entries "
            "that fill when the price reaches them (BTC-USDT, DOGE-USDT)\n") in out


def test_windows_docs_give_the_execution_policy_fix_and_the_windows_python() -> None:
    """A fresh Windows blocks .\\run.ps1; the first places a Windows user reads say how to allow it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_ps1 = readme.index(".\\run.ps1")
    fix = readme.index("Set-ExecutionPolicy -Scope CurrentUser RemoteSigned")
    assert 0 < fix - first_ps1 < 600  # in the paragraph that first gives .\run.ps1
    assert "-ExecutionPolicy Bypass -File .\\run.ps1" in readme
    quickstart = (ROOT / "QUICKSTART.md").read_text(encoding="utf-8")
    assert "Set-ExecutionPolicy -Scope CurrentUser RemoteSigned" in quickstart
    assert "-ExecutionPolicy Bypass -File .\\run.ps1" in quickstart
    signals = (ROOT / "TEST_SIGNALS.md").read_text(encoding="utf-8")
    assert signals.count(".venv/bin/python") == signals.count(".venv\\Scripts\\python") > 0
