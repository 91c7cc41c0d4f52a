"""Where the web dashboard is, as `./run.sh` and `./run.sh demo` say it (tools/launcher.py): `./run.sh`
prints its URL once the server answers; the demo ends with it, its own server stopped."""

from __future__ import annotations

import importlib.util
import re
import socket
import sys
from pathlib import Path

import pytest

from hit_server.testing import free_port

ROOT = Path(__file__).resolve().parent.parent


def load_launcher():
    sys.path.insert(0, str(ROOT / "tools"))
    spec = importlib.util.spec_from_file_location("launcher", ROOT / "tools" / "launcher.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


launcher = load_launcher()
SETTINGS = ("HOST", "PORT", "DASHBOARD_ENABLED", "API_KEYS", "DATA_DIR", "TRADING_SERVER_URL")

# Stands in for `.venv/bin/python -m hit_server` (answers /health) and `-m hit_bot` (exits at once).
FAKE_SERVICES = """\
import http.server, sys
if "hit_bot" in sys.argv:
    sys.exit(3)
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{{"status": "ok"}}')
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", {port}), Health).serve_forever()
"""


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    return {k: v for k, v in launcher.os.environ.items() if k.upper() not in SETTINGS}


@pytest.mark.parametrize(
    ("env_line", "said"),
    [
        ("", "[hit] dashboard: http://127.0.0.1:{port}/dashboard (log in with a key of API_KEYS"),
        ("DASHBOARD_ENABLED=false\n", "[hit] the web dashboard is off (DASHBOARD_ENABLED=false)"),
        ("DASHBOARD_ENABLED=yes\n", "[hit] dashboard: http://127.0.0.1:{port}/dashboard"),
    ],
)
def test_run_prints_the_dashboards_url_once_the_server_answers(
    tmp_path: Path,
    clean_environ: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    env_line: str,
    said: str,
) -> None:
    port = free_port()
    for folder in ("trading-server", "discord-bot"):
        (tmp_path / folder).mkdir()
    (tmp_path / "trading-server" / ".env").write_text(f"PORT={port}\n{env_line}")
    services = tmp_path / "services.py"
    services.write_text(FAKE_SERVICES.format(port=port))
    python = tmp_path / "python"
    python.write_text(f"#!{sys.executable}\nexec(open({str(services)!r}).read())\n")
    python.chmod(0o755)
    assert launcher.run_all(python, tmp_path, clean_environ) == 3  # the bot's exit: it was started
    out = capsys.readouterr().out
    assert said.format(port=port) in out
    assert out.index(said.format(port=port)) < out.index("discord bot stopped")  # said while it runs


def test_demo_ends_with_the_dashboards_url_and_leaves_nothing_running(
    tmp_path: Path, clean_environ: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "TEST_SIGNALS.md").write_text(
        "<!-- examples -->\n```signal\nLONG SOL-USDT Entry: market SL: 145 TP: 156\n```\n"
    )
    (tmp_path / "trading-server").mkdir()
    (tmp_path / "trading-server" / ".env").write_text("PORT=8765\n")
    assert launcher.demo(Path(sys.executable), tmp_path) == 0
    lines = capfd.readouterr().out.splitlines()
    assert lines[-1].startswith("[hit] dashboard: http://127.0.0.1:8765/dashboard (log in with")
    assert "[hit] nothing is left running: the demo's server has stopped" in lines
    started = next(line for line in lines if "starting the trading server in paper mode on" in line)
    found = re.search(r"http://127\.0\.0\.1:(\d+)", started)
    assert found
    with socket.socket() as probe:  # the demo's own server is gone
        assert probe.connect_ex(("127.0.0.1", int(found.group(1)))) != 0
