"""The launcher behind ./run.sh and ./run.sh demo, exercised with real child processes."""

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import launcher  # noqa: E402


def python_service(name: str, code: str, tmp_path: Path) -> launcher.Service:
    return launcher.Service(name, [sys.executable, "-c", code], {}, tmp_path)


def test_supervise_stops_the_other_service_when_one_dies(tmp_path):
    survivor = python_service("server", "import time; time.sleep(60)", tmp_path)
    dying = python_service("bot", "import sys; sys.exit(3)", tmp_path)
    survivor.start()
    dying.start()
    started = time.monotonic()
    code = launcher.supervise([survivor, dying], poll=lambda: time.sleep(0.05))
    assert code == 3
    assert survivor.exit_code() is not None
    assert time.monotonic() - started < 15


def test_supervise_stops_everything_on_ctrl_c(tmp_path):
    service = python_service("server", "import time; time.sleep(60)", tmp_path)
    service.start()

    def interrupt() -> None:
        raise KeyboardInterrupt

    assert launcher.supervise([service], poll=interrupt) == 0
    assert service.exit_code() is not None


def test_wait_healthy_gives_up_when_the_process_exits(tmp_path):
    service = python_service("server", "import sys; sys.exit(1)", tmp_path)
    service.start()
    started = time.monotonic()
    assert not launcher.wait_healthy(f"http://127.0.0.1:{launcher.free_port()}/health", service, timeout=30)
    assert time.monotonic() - started < 10


def test_wait_healthy_sees_a_serving_process(tmp_path):
    port = launcher.free_port()
    code = (
        "import http.server, json\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        body = json.dumps({'status': 'ok'}).encode()\n"
        "        self.send_response(200); self.send_header('Content-Type', 'application/json')\n"
        "        self.end_headers(); self.wfile.write(body)\n"
        f"http.server.HTTPServer(('127.0.0.1', {port}), H).serve_forever()\n"
    )
    with launcher.running(python_service("server", code, tmp_path)) as service:
        assert launcher.wait_healthy(f"http://127.0.0.1:{port}/health", service, timeout=20)


def test_extract_examples_reads_fenced_blocks_after_the_marker():
    markdown = (
        "# Title\n```\nnot an example\n```\n<!-- examples -->\n## Standard\n"
        "```\nLONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000\n```\n"
        "text\n```text\n**LONG** ETH-USDT\n\nEntry: 3200\n```\n"
    )
    assert launcher.extract_examples(markdown) == [
        "LONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000",
        "**LONG** ETH-USDT\n\nEntry: 3200",
    ]


def test_demo_env_forces_paper_mode_and_drops_credentials(tmp_path):
    user_env = {"TRADING_MODE": "live", "BLOFIN_API_KEY": "real-key", "BLOFIN_API_SECRET": "real-secret"}
    env = launcher.demo_env(user_env, tmp_path, 8123, "k" * 40, tmp_path / "logs")
    assert env["TRADING_MODE"] == "paper"
    assert env["BLOFIN_API_KEY"] == ""
    assert env["BLOFIN_API_SECRET"] == ""
    assert env["TRADING_SERVER_URL"] == "http://127.0.0.1:8123"
    assert env["API_KEYS"] == env["TRADING_SERVER_API_KEY"] == "k" * 40
    assert str(tmp_path) in env["DATABASE_URL"]
    assert env["DATA_DIR"] == str(tmp_path)  # the demo's paper exchange is never the user's
    assert env["LOG_DIR"] == str(tmp_path / "logs")


def test_service_output_goes_to_its_file_and_its_tail_is_readable(tmp_path):
    code = "import sys; print('starting'); print('boom: port in use', file=sys.stderr); sys.exit(1)"
    service = launcher.Service("server", [sys.executable, "-c", code], {}, tmp_path, tmp_path / "out.log")
    service.start()
    assert service.proc is not None
    service.proc.wait(20)
    assert sorted(service.output_tail().splitlines()) == ["boom: port in use", "starting"]
