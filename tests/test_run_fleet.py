"""`./run.sh fleet` (tools/fleet.py): the whole fleet on one machine, exercised as a user runs it.

Two accounts in two egress groups are added to the fleet's own PostgreSQL cluster beforehand (keys on
stdin); then ./run.sh fleet, as a child process, must start the cluster, the paper simulator serving
those accounts, the API server and a worker per group; a signal reaches both accounts; a Ctrl+C stops
every process and the cluster, in one line and exit 130.
"""

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from hit_server.testing import clean_env, free_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import fleet  # noqa: E402
import postgres  # noqa: E402

MASTER = "ZmFrZS1idXQtd2VsbC1mb3JtZWQtbWFzdGVyLWtleSE="
ACCOUNTS = {"alice": "g1", "bob": "g2"}


def test_database_urls_are_shown_without_their_password():
    assert fleet.without_password("postgresql+asyncpg://hit:s3cret@db:5432/hit") == (
        "postgresql+asyncpg://hit:***@db:5432/hit"
    )
    assert fleet.without_password("postgresql+asyncpg://hit@127.0.0.1:5433/f") == (
        "postgresql+asyncpg://hit@127.0.0.1:5433/f"
    )
    assert fleet.is_postgres("postgresql://x") and not fleet.is_postgres("sqlite:///j.db")
    assert not fleet.is_postgres(None)


def test_paths_resolve_as_the_server_resolves_them(tmp_path):
    server_dir = tmp_path / "trading-server"
    assert fleet.server_path(None, "data", server_dir) == server_dir / "data"
    assert fleet.server_path("elsewhere", "data", server_dir) == server_dir / "elsewhere"
    assert fleet.server_path(str(tmp_path / "abs"), "data", server_dir) == tmp_path / "abs"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="only Linux answers on 127.0.0.2 and up")
def test_each_egress_group_leaves_the_simulator_from_a_loopback_address_of_its_own():
    assert fleet.loopback_sources(["g1", "g2"]) == {"g1": "127.0.0.2", "g2": "127.0.0.3"}
    assert fleet.loopback_sources([f"g{i}" for i in range(300)]) == {}


def until(check: Callable[[], Any], within: float, what: str, every: float = 0.25) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"not within {within:.0f} s: {what}")


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def processes_of(data_dir: Path) -> dict[int, list[str]]:
    """pid -> argv of every process started with DATA_DIR=`data_dir` in its environment (Linux /proc)."""
    marker = f"DATA_DIR={data_dir}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found[int(entry.name)] = (entry / "cmdline").read_bytes().decode().split("\0")[:-1]
        except OSError:
            continue
    return found


def alive(pid: int) -> bool:
    try:
        return "zombie" not in (Path("/proc") / str(pid) / "status").read_text().lower()
    except OSError:
        return False


@pytest.fixture
def workdir() -> Iterator[Path]:
    """DATA_DIR and LOG_DIR's parent, where the `postgres` user can enter when the tests run as root."""
    with tempfile.TemporaryDirectory(prefix="hit-run-fleet-") as tmp:
        os.chmod(tmp, 0o755)  # noqa: S103 - the server user must enter it; the test's own throwaway data
        yield Path(tmp)


def add_accounts(cluster: postgres.Cluster, env: dict[str, str]) -> list[str]:
    """alice and bob, with keys on stdin; their secrets, to look for where they must not be."""
    secret_values = []
    for name, group in ACCOUNTS.items():
        keys = [f"{name}-key-{secrets.token_hex(6)}", secrets.token_hex(16), secrets.token_hex(8)]
        secret_values += keys
        done = subprocess.run(
            [sys.executable, "-m", "hit_server", "accounts", "add", name, "--egress", group],
            env={**env, "DATABASE_URL": cluster.url()}, input="\n".join(keys) + "\n", capture_output=True,
            text=True, timeout=120, check=False,
        )
        assert done.returncode == 0, done.stderr
    return secret_values


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fleet's cluster uses Debian's layout")
def test_run_fleet_trades_a_signal_on_every_account_and_ctrl_c_stops_everything(workdir):
    binaries = postgres.find_binaries()
    if binaries is None:
        if os.environ.get("CI"):
            pytest.fail("./run.sh test installs PostgreSQL in CI, yet no initdb was found")
        pytest.skip("no PostgreSQL server binaries on this machine")
    data_dir, log_dir = workdir / "data", workdir / "logs"
    port, api_key = free_port(), secrets.token_urlsafe(32)
    env = clean_env(
        TRADING_MODE="paper", DATA_DIR=str(data_dir), LOG_DIR=str(log_dir), PORT=str(port), HOST="127.0.0.1",
        API_KEYS=api_key, HIT_MASTER_KEY=MASTER, PAPER_PRICE_WALK="false", LOG_LEVEL="INFO",
    )
    env.pop("FLEET", None)
    cluster_dir = data_dir / fleet.CLUSTER_DIR
    with postgres.kept_cluster(cluster_dir, {}, print) as cluster:
        secret_values = add_accounts(cluster, env)
    output = workdir / "launcher.txt"
    with output.open("wb") as sink:
        launcher = subprocess.Popen(
            [str(ROOT / "run.sh"), "fleet"], cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
            # a test run from a shell's background job inherits an ignored SIGINT: a terminal's is not
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )

    def said() -> str:
        return output.read_text(errors="replace")

    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers={"X-API-Key": api_key}, timeout=10) as http:

            def healthy() -> bool:
                assert launcher.poll() is None, said()
                try:
                    return http.get("/health").status_code == 200
                except httpx.HTTPError:
                    return False

            until(healthy, 240, "the API server's /health")

            def workers_ready() -> bool:
                assert launcher.poll() is None, said()
                logs = [log_dir / "fleet" / f"worker-{group}.log" for group in ACCOUNTS.values()]
                return all(log.exists() and "ready:" in log.read_text(errors="replace") for log in logs)

            until(workers_ready, 240, "both workers ready")
            printed = said()
            assert "egress group g1: a worker for 1 account(s): alice" in printed, printed
            assert "egress group g2: a worker for 1 account(s): bob" in printed, printed
            assert f"dashboard: {base}/dashboard" in printed
            sim_url = printed.split("the BloFin simulator at ", 1)[1].split()[0]
            ticker = httpx.get(f"{sim_url}/api/v1/market/tickers", params={"instId": "ETH-USDT"}).json()
            price = Decimal(ticker["data"][0]["last"])
            signal_body = {
                "signal_id": f"fleet-run-{secrets.token_hex(4)}", "symbol": "ETH-USDT", "side": "long",
                "entries": [], "stop_loss": str(price * Decimal("0.97")),
                "take_profits": [str(price * Decimal("1.02")), str(price * Decimal("1.04"))],
            }
            reply = http.post("/api/v1/signals", json=signal_body)
            assert reply.status_code == 201, reply.text

            def both_placed() -> dict[str, Any] | None:
                seen: dict[str, Any] = http.get(f"/api/v1/fanouts/{signal_body['signal_id']}").json()
                return seen if seen.get("by_status") == {"placed": 2} else None

            progress = until(both_placed, 120, "the signal placed on alice's and bob's accounts")
            assert progress["total"] == 2 and progress["not_placed"] == []

        services = processes_of(data_dir)
        commands = [" ".join(argv) for argv in services.values()]
        assert sum("hit_server.blofin_sim" in c for c in commands) == 1, commands
        assert sum("hit_server worker --egress" in c for c in commands) == 2, commands
        simulator = next(argv for argv in services.values() if "hit_server.blofin_sim" in argv)
        assert not Path(simulator[simulator.index("--accounts") + 1]).exists()  # deleted once read
        for argv in services.values():
            assert not any(value in " ".join(argv) for value in secret_values)

        stopping = time.monotonic()
        os.killpg(launcher.pid, signal.SIGINT)  # what Ctrl+C in a terminal does
        assert launcher.wait(90) == 130, said()
        assert said().rstrip().splitlines()[-1] == "[hit] stopped (Ctrl+C)"
        assert "Traceback" not in said()
        assert not [pid for pid in services if alive(pid)], "every service stopped"
        assert not port_open(cluster.port), "the cluster is down"
        status = subprocess.run(postgres.as_server_user(postgres.status_command(binaries, cluster),
                                                        is_root=postgres.running_as_root()),
                                capture_output=True, text=True, timeout=60, check=False)
        assert status.returncode == 3, status.stdout + status.stderr  # "no server running"
        assert time.monotonic() - stopping < 60, "stopped within the services' grace periods"
        for path in log_dir.rglob("*"):
            if path.is_file():
                assert not any(value.encode() in path.read_bytes() for value in secret_values), path
        assert int((cluster_dir / "port").read_text()) == cluster.port  # kept for the next run
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGINT)
            try:
                launcher.wait(60)
            except subprocess.TimeoutExpired:
                launcher.kill()
        for pid in processes_of(data_dir):
            os.kill(pid, signal.SIGKILL)
        if (cluster_dir / "data" / "postmaster.pid").exists():
            stop = postgres.as_server_user(postgres.stop_command(binaries, cluster),
                                           is_root=postgres.running_as_root())
            subprocess.run(stop, timeout=60, check=False)


def test_without_postgresql_the_fleet_says_so_in_one_sentence_and_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(postgres, "find_binaries", lambda *a: None)
    monkeypatch.setattr(postgres, "may_install", lambda **kw: False)
    environ = clean_env(DATA_DIR=str(tmp_path / "data"), LOG_DIR=str(tmp_path / "logs"))
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert fleet.run(Path(sys.executable), ROOT, environ) == 2
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers  # given back
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "Traceback" not in out
    assert "install it" in out and "DATABASE_URL" in out
    assert not (tmp_path / "data" / fleet.CLUSTER_DIR).exists()


def test_an_unreachable_database_url_is_one_sentence_and_exit_2(tmp_path, capsys):
    environ = clean_env(DATA_DIR=str(tmp_path / "data"), LOG_DIR=str(tmp_path / "logs"),
                        DATABASE_URL=f"postgresql+asyncpg://hit@127.0.0.1:{free_port()}/nowhere")
    assert fleet.run(Path(sys.executable), ROOT, environ) == 2
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "DATABASE_URL" in lines[0]  # which database, then why it can't be used
    assert "can't be used" in lines[1] and "Traceback" not in lines[1]
    assert not (tmp_path / "logs" / "fleet").exists()  # nothing was started


def test_the_summary_warns_of_one_ip_for_every_group_in_demo_and_live_and_says_how_to_add_accounts(
    tmp_path, capsys
):
    accounts = fleet.FleetAccounts({"eu-1": ["alice", "bob"], "us-1": ["carol"]}, {"dave": "wrong key"})
    env, logs, url = clean_env(), tmp_path / "logs", "http://127.0.0.1:8000"
    fleet._summary(url, env, tmp_path, accounts, logs / "fleet", logs, mode="live", paper=False)
    out = capsys.readouterr().out
    assert "dashboard: http://127.0.0.1:8000/dashboard" in out
    assert "egress group eu-1: a worker for 2 account(s): alice, bob" in out
    assert "account dave is left out: wrong key" in out
    assert "WARNING (live): on one machine every egress group leaves from this machine's IP address" in out
    assert "simulator" not in out

    fleet._summary("http://127.0.0.1:8000", {**env, "BLOFIN_BASE_URL": "http://127.0.0.1:9"}, tmp_path,
                   fleet.FleetAccounts({}, {}), logs / "fleet", logs, mode="paper", paper=True)
    out = capsys.readouterr().out
    assert "no enabled account yet: add one with ./run.sh accounts add NAME" in out
    assert "WARNING" not in out and "the BloFin simulator at http://127.0.0.1:9" in out
