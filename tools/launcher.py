"""Starting the two services together (`./run.sh`) and the paper demo (`./run.sh demo`).

Standard library only: it runs from tools/hitctl.py before or after the environment exists, and it
never imports the services (they run as their own processes, exactly as a user would run them).

The supervisor's contract: the server starts first and must answer /health before the bot starts;
Ctrl+C stops both; if either dies, the other is stopped and the exit says which one died.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEALTH_TIMEOUT_S = 90.0
STOP_GRACE_S = 10.0
# The trading server's own defaults (hit_server/settings.py): where it listens when nothing says otherwise.
SERVER_DEFAULT_HOST = "127.0.0.1"
SERVER_DEFAULT_PORT = 8000
EVERY_INTERFACE = {"0.0.0.0", "::", "[::]"}  # noqa: S104 - never bound: a server bound there answers on loopback
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
EXAMPLE_HEADING = "<!-- examples -->"


def say(message: str) -> None:
    print(f"[hit] {message}", flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Service:
    """A child process with a name, started in its own process group so it can be stopped whole."""

    name: str
    cmd: Sequence[str]
    env: Mapping[str, str]
    cwd: Path
    output: Path | None = None  # where the console output goes (None: this terminal)
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        kwargs: dict[str, Any] = {}
        if self.output is not None:
            self.output.parent.mkdir(parents=True, exist_ok=True)
            sink = self.output.open("wb")
            kwargs.update(stdout=sink, stderr=subprocess.STDOUT)
        if os.name == "nt":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
        else:
            kwargs["start_new_session"] = True
        self.proc = subprocess.Popen(list(self.cmd), cwd=self.cwd, env=dict(self.env), **kwargs)
        if self.output is not None:
            sink.close()  # the child has its own handle

    def output_tail(self, lines: int = 30) -> str:
        if self.output is None or not self.output.exists():
            return ""
        return "\n".join(self.output.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def stop(self) -> None:
        """Ask politely (SIGINT / CTRL_BREAK), then terminate, then kill."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        polite = signal.CTRL_BREAK_EVENT if os.name == "nt" else signal.SIGINT  # type: ignore[attr-defined]
        with suppress(ProcessLookupError, OSError):
            proc.send_signal(polite)
        try:
            proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def http_json(url: str, *, api_key: str | None = None, timeout: float = 5.0) -> Any:
    request = urllib.request.Request(url, headers={"X-API-Key": api_key} if api_key else {})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (loopback only)
        return json.loads(response.read().decode("utf-8"))


def wait_healthy(url: str, service: Service, timeout: float = HEALTH_TIMEOUT_S) -> bool:
    """Poll /health until it answers; give up early if the process has already exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.exit_code() is not None:
            return False
        with suppress(urllib.error.URLError, OSError, ValueError):
            http_json(url, timeout=2.0)
            return True
        time.sleep(0.25)
    return False


def supervise(services: Sequence[Service], poll: Callable[[], None] = lambda: time.sleep(0.5)) -> int:
    """Wait until one service exits or Ctrl+C; then stop the others. Returns the exit status."""
    try:
        while True:
            for service in services:
                code = service.exit_code()
                if code is not None:
                    say(f"{service.name} stopped (exit {code}); stopping the others")
                    return code or 1
            poll()
    except KeyboardInterrupt:
        say("Ctrl+C: stopping")
        return 0
    finally:
        for service in reversed(services):
            service.stop()


def labelled_examples(markdown: str) -> list[tuple[str, str]]:
    """(kind, message) for every fenced block after the examples marker of TEST_SIGNALS.md.

    The kind is the fence's info string: `signal`, `chatter` or `invalid`.
    """
    _, _, tail = markdown.partition(EXAMPLE_HEADING)
    return [(info.strip(), block.strip("\n")) for info, block in FENCE.findall(tail or markdown)]


def extract_examples(markdown: str) -> list[str]:
    return [text for _, text in labelled_examples(markdown)]


def read_env_file(path: Path) -> dict[str, str]:
    """The `KEY=value` lines of a service's `.env`, read the way its settings read them (python-dotenv):
    `export ` allowed before the key, quotes around the value removed, a ` # comment` after an unquoted
    value dropped, the last line of a key winning. Keys are upper-cased (the settings ignore case).
    A missing file is empty."""
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        key, sep, value = line.strip().removeprefix("export ").partition("=")
        key = key.strip()
        if not sep or not key or key.startswith("#"):
            continue
        values[key.upper()] = _env_value(value.strip())
    return values


def _env_value(raw: str) -> str:
    for quote in ('"', "'"):
        if raw.startswith(quote) and raw.endswith(quote) and len(raw) >= 2:
            return raw[1:-1]
    return re.sub(r"\s+#.*$", "", raw).strip()


def setting(name: str, environ: Mapping[str, str], env_file: Mapping[str, str]) -> str | None:
    """A setting as a service sees it: the environment over its `.env` (names in any case); empty is unset."""
    from_environ = {key.upper(): value for key, value in environ.items()}
    for source in (from_environ, env_file):
        value = source.get(name.upper(), "").strip()
        if value:
            return value
    return None


def server_url(environ: Mapping[str, str], server_dir: Path) -> str:
    """Where the trading server will really listen, seen from this machine.

    HOST and PORT with the server's own precedence: the environment, then `trading-server/.env`, then
    its defaults. A port that is not a number makes the server refuse to start; the default is then as
    good as any guess, since the health wait ends when the server exits.
    """
    env_file = read_env_file(server_dir / ".env")
    host = setting("HOST", environ, env_file) or SERVER_DEFAULT_HOST
    if host in EVERY_INTERFACE:
        host = SERVER_DEFAULT_HOST
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address in a URL
    port_text = setting("PORT", environ, env_file)
    port = int(port_text) if port_text and port_text.isdigit() else SERVER_DEFAULT_PORT
    return f"http://{host}:{port}"


FALSE_WORDS = {"0", "false", "f", "no", "n", "off"}  # what the server's settings read as false


def dashboard_line(url: str, environ: Mapping[str, str], server_dir: Path) -> str:
    """Where the server's web dashboard is and how to log in (or that DASHBOARD_ENABLED turned it off)."""
    env_file = read_env_file(server_dir / ".env")
    enabled = setting("DASHBOARD_ENABLED", environ, env_file) or "true"
    if enabled.strip().lower() in FALSE_WORDS:
        return "the web dashboard is off (DASHBOARD_ENABLED=false)"
    return (
        f"dashboard: {url}/dashboard (log in with a key of API_KEYS, or DASHBOARD_PASSWORD; a paper server "
        "without API_KEYS keeps its key in DATA_DIR/api_key, trading-server/data/api_key by default)"
    )


def bot_env(environ: Mapping[str, str], bot_dir: Path, server: str) -> dict[str, str]:
    """The bot's environment: unless the user chose a TRADING_SERVER_URL (environment or
    `discord-bot/.env`), it is pointed at the server this launcher started, wherever that listens."""
    env = dict(environ)
    if setting("TRADING_SERVER_URL", environ, read_env_file(bot_dir / ".env")) is None:
        env["TRADING_SERVER_URL"] = server
    return env


@contextmanager
def running(service: Service) -> Iterator[Service]:
    service.start()
    try:
        yield service
    finally:
        service.stop()


def run_all(python: Path, root: Path, environ: Mapping[str, str] = os.environ) -> int:
    """Server, then (once healthy) the bot; each reads its own .env in its own folder.

    The health check asks the address the server will really use (`server_url`), not a guess.
    A Ctrl+C while waiting stops the server (it has a session of its own, so Ctrl+C doesn't reach it).
    """
    server_dir, bot_dir = root / "trading-server", root / "discord-bot"
    url = server_url(environ, server_dir)
    server = Service("trading server", [str(python), "-m", "hit_server"], environ, server_dir)
    bot = Service("discord bot", [str(python), "-m", "hit_bot"], bot_env(environ, bot_dir, url), bot_dir)
    server.start()
    try:
        healthy = wait_healthy(f"{url}/health", server, timeout=HEALTH_TIMEOUT_S)
    except KeyboardInterrupt:
        server.stop()
        raise
    if not healthy:
        say(f"the trading server did not become healthy at {url}; see its messages above")
        server.stop()
        return 1
    say(dashboard_line(url, environ, server_dir))
    bot.start()
    return supervise([server, bot])


def demo_env(
    base: Mapping[str, str], workdir: Path, port: int, api_key: str, log_dir: Path
) -> dict[str, str]:
    """Paper mode on a throwaway journal: whatever the user's .env says, the demo never trades live."""
    env = dict(base)
    env.update(
        {
            "TRADING_MODE": "paper",
            "BLOFIN_API_KEY": "",
            "BLOFIN_API_SECRET": "",
            "BLOFIN_PASSPHRASE": "",
            "BLOFIN_BASE_URL": "",
            "API_KEYS": api_key,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "DATABASE_URL": f"sqlite:///{(workdir / 'demo-journal.db').as_posix()}",
            "DATA_DIR": str(workdir),  # the paper exchange's saved account too: never the user's
            "PAPER_PRICE_SOURCE": "model",
            "MAX_OPEN_POSITIONS": "50",
            "TRADING_SERVER_URL": f"http://127.0.0.1:{port}",
            "TRADING_SERVER_API_KEY": api_key,
            "LOG_DIR": str(log_dir),
        }
    )
    return env


# Events after which a placed signal has nothing resting any more (trading-server/README.md, the feed).
ENDED_EVENTS = frozenset({
    "closed", "stopped_out", "entries_expired", "entries_cancelled", "closed_for_safety",
    "paper_exchange_reset",
})


@dataclass(frozen=True)
class PlacedSignals:
    """Where the placed signals stand: each symbol in one list (the server trades one signal per symbol)."""

    open: list[str]  # a position is open (an entry filled, maybe only some rungs of a ladder)
    waiting: list[str]  # no position yet: resting limit entries wait for the price to reach them
    ended: list[str]  # no position and nothing resting (closed, stopped out, entries expired)

    def sentence(self) -> str:
        """One line: how many are open, how many wait on resting limit entries, how many ended."""
        def group(symbols: list[str], what: str) -> str:
            return f"{len(symbols)} {what}" + (f" ({', '.join(symbols)})" if symbols else "")

        total = len(self.open) + len(self.waiting) + len(self.ended)
        parts = [
            group(self.open, "with an open position"),
            group(self.waiting, "waiting on resting limit entries that fill when the price reaches them"),
        ]
        if self.ended:
            parts.append(group(self.ended, "already ended"))
        return f"{total} placed signals: " + "; ".join(parts)


def placed_signals(trades: list[dict[str, Any]], positions: list[dict[str, Any]],
                   events: list[dict[str, Any]]) -> PlacedSignals:
    """Sorts the journal's placed signals (GET /api/v1/signals) by what the exchange holds now
    (GET /api/v1/positions) and what the feed says has ended (GET /api/v1/events).

    A signal's answer lists its entry orders as placed; a limit entry without a position and without an
    ending event is still resting. `open_positions` alone hides those, which is what confused users.
    """
    with_position = {row["instId"] for row in positions}
    ended_ids = {event["signal_id"] for event in events if event["type"] in ENDED_EVENTS}
    result = PlacedSignals(open=[], waiting=[], ended=[])
    for trade in sorted(trades, key=lambda t: str(t["created_at"])):
        rests = any(o["role"] == "entry" and o["type"] == "limit" for o in trade["orders"])
        if trade["symbol"] in with_position:
            result.open.append(trade["symbol"])
        elif rests and trade["signal_id"] not in ended_ids:
            result.waiting.append(trade["symbol"])
        else:
            result.ended.append(trade["symbol"])
    return result


def print_summary(base_url: str, api_key: str) -> None:
    def get(path: str) -> Any:
        return http_json(f"{base_url}/api/v1/{path}", api_key=api_key)

    stats = get("stats")
    rows: list[dict[str, Any]] = get("positions")["positions"]
    say("stats: " + ", ".join(f"{k}={v}" for k, v in stats.items()))
    trades = get("signals?status=placed&limit=500")["signals"]
    say(placed_signals(trades, rows, get("events?limit=500")["events"]).sentence())
    say(f"paper positions ({len(rows)}):")
    for row in rows:
        fields = ("instId", "positions", "averagePrice", "unrealizedPnl")
        print("    " + "  ".join(f"{k}={row.get(k)}" for k in fields), flush=True)


def demo(python: Path, root: Path) -> int:
    """The whole system on paper: server with its in-process simulator, TEST_SIGNALS.md replayed."""
    examples = extract_examples((root / "TEST_SIGNALS.md").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="hit-demo-") as tmp:
        workdir = Path(tmp)
        port, api_key = free_port(), secrets.token_urlsafe(32)
        log_dir = root / "logs" / "demo"
        env = demo_env(os.environ, workdir, port, api_key, log_dir)
        feed = workdir / "signals.jsonl"
        feed.write_text("".join(json.dumps({"text": t}) + "\n" for t in examples), encoding="utf-8")
        base_url = f"http://127.0.0.1:{port}"
        server = Service(
            "trading server", [str(python), "-m", "hit_server"], env, workdir, log_dir / "server-console.log"
        )
        say(f"starting the trading server in paper mode on {base_url} (no credentials, simulator exchange)")
        with running(server):
            if not wait_healthy(f"{base_url}/health", server):
                say("the trading server did not become healthy; its last words:")
                print(server.output_tail(), flush=True)
                return 1
            say(f"replaying {len(examples)} messages from TEST_SIGNALS.md through the bot's pipeline")
            replay = [str(python), "-m", "hit_bot", "replay", str(feed)]
            code = subprocess.call(replay, cwd=workdir, env=env)
            print_summary(base_url, api_key)
        say(f"logs of this run: {log_dir} (one line per event, each tagged with its signal_id)")
        url = server_url(os.environ, root / "trading-server")
        say(f"API docs: ./run.sh server, then {url}/docs; the journal: GET /api/v1/trades")
        say("next: QUICKSTART.md connects Discord and BloFin demo keys; then ./run.sh starts both services")
        say("nothing is left running: the demo's server has stopped")
        say("for the web dashboard, start the server (./run.sh server, or ./run.sh for both services):")
        say(dashboard_line(url, os.environ, root / "trading-server"))
        return code


def main(argv: Sequence[str], python: Path, root: Path) -> int:
    command = argv[0] if argv else "run"
    if command == "demo":
        return demo(python, root)
    return run_all(python, root)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], Path(sys.executable), Path(__file__).resolve().parent.parent))
