"""`./run.sh fleet`: the whole fleet (issue #19) on one machine, until Ctrl+C.

Standard library only, like the launcher (tools/launcher.py), whose services, health wait and settings
reading it shares. In order:

1. PostgreSQL: DATABASE_URL (environment, else trading-server/.env) when it is a postgresql URL;
   otherwise the fleet's own cluster in `<DATA_DIR>/fleet-postgres/` (tools/postgres.py `kept_cluster`:
   made once, started for this run, stopped at its end, its data kept).
2. The registry's enabled accounts, by egress group, read with the server's own code
   (`python -m hit_server.fleet.paper`). In paper mode without BLOFIN_BASE_URL that also writes the
   simulator's accounts file (their keys) into a private temporary directory, mode 0600, deleted as soon
   as the simulator has read it; the keys never go through an argument or a log line.
3. Paper mode without BLOFIN_BASE_URL: the BloFin simulator (`python -m hit_server.blofin_sim`) on a free
   127.0.0.1 port, serving those accounts, and its default account for the server's own `default`.
   Demo or live: BloFin itself, nothing to start.
4. The API server with FLEET=true, then, once it answers /health, one worker per egress group
   (`python -m hit_server worker --egress <group>`). Each service's console goes to
   `<LOG_DIR>/fleet/<service>.log`.
5. A summary (the dashboard, the accounts per group, the logs), then supervision: Ctrl+C stops
   everything (one line, exit 130); a service that dies is reported with its last lines and the others
   are stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import launcher
import postgres
from launcher import Service, read_env_file, say, setting

CLUSTER_DIR = "fleet-postgres"  # under DATA_DIR
DEFAULT_DATA_DIR = "data"  # the server's, relative to trading-server/
DEFAULT_PAPER_BALANCE = "10000"
# the standalone simulator's default account (`python -m hit_server.blofin_sim --help`): the server's own
# `default` account trades there; a local simulator's credentials, not secrets
SIM_DEFAULT_CREDENTIALS = {
    "BLOFIN_API_KEY": "sim-key",
    "BLOFIN_API_SECRET": "sim-secret",
    "BLOFIN_PASSPHRASE": "sim-passphrase",
}
ACCOUNTS_TIMEOUT_S = 120.0
MAX_LOOPBACK_GROUPS = 250  # 127.0.0.2 ... 127.0.0.251


class FleetError(Exception):
    """The fleet cannot start (its accounts can't be read); the message is one sentence for the user."""


@dataclass(frozen=True)
class FleetAccounts:
    """The registry's enabled accounts: names by egress group, and those whose keys don't open."""

    groups: dict[str, list[str]]
    unreadable: dict[str, str]


def server_path(text: str | None, default: str, server_dir: Path) -> Path:
    """A path setting as the server resolves it: relative to trading-server/, where it runs."""
    path = Path(text or default).expanduser()
    return path if path.is_absolute() else server_dir / path


def is_postgres(url: str | None) -> bool:
    return bool(url) and str(url).startswith("postgresql")


def without_password(url: str) -> str:
    """A database URL fit for the console: its password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def loopback_sources(groups: Sequence[str]) -> dict[str, str]:
    """One loopback address per egress group (127.0.0.2, 127.0.0.3, ...): against the local simulator
    each group then leaves from an IP of its own, as on BloFin. Linux only (elsewhere only 127.0.0.1
    answers), and only for as many groups as there are addresses."""
    if not sys.platform.startswith("linux") or len(groups) > MAX_LOOPBACK_GROUPS:
        return {}
    return {group: f"127.0.0.{index + 2}" for index, group in enumerate(groups)}


def read_accounts(
    python: Path, env: Mapping[str, str], server_dir: Path, sim_file: Path | None
) -> FleetAccounts:
    """The enabled accounts by egress group, with the server's own code (hit_server/fleet/paper.py);
    `sim_file`: also write the simulator's accounts file there (0600)."""
    cmd = [str(python), "-m", "hit_server.fleet.paper"]
    if sim_file is not None:
        cmd += ["--sim-accounts", str(sim_file)]
    try:
        done = subprocess.run(cmd, cwd=server_dir, env=dict(env), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=ACCOUNTS_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise FleetError(f"The fleet's accounts were not read within {ACCOUNTS_TIMEOUT_S:.0f} s") from None
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        if said:
            raise FleetError(said[-1])
        raise FleetError(f"The fleet's accounts cannot be read (exit {done.returncode})")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return FleetAccounts(answer["groups"], answer["unreadable"])


def watch(services: Sequence[Service], poll: Callable[[], None] = lambda: time.sleep(0.5)) -> int:
    """Until Ctrl+C (which goes on up, to hitctl's one line) or a service's death, reported with its last
    lines: that service's exit status (1 if it was 0). The caller stops the others."""
    while True:
        for service in services:
            code = service.exit_code()
            if code is not None:
                say(f"{service.name} stopped (exit {code}); stopping the fleet. Its last lines "
                    f"({service.output}):")
                print(service.output_tail(), flush=True)
                return code or 1
        poll()


def stop_all(services: Sequence[Service]) -> None:
    for service in reversed(services):
        service.stop()


@contextmanager
def accounts_environment(root: Path, environ: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """The environment of `./run.sh accounts ...`: the registry the fleet uses. Unchanged, unless the
    fleet has a cluster of its own (no PostgreSQL DATABASE_URL, and `<DATA_DIR>/fleet-postgres` made by a
    `./run.sh fleet`): then DATABASE_URL is that cluster's, started for the command when not running."""
    server_dir = root / "trading-server"
    env_file = read_env_file(server_dir / ".env")
    data_dir = server_path(setting("DATA_DIR", environ, env_file), DEFAULT_DATA_DIR, server_dir)
    directory = data_dir / CLUSTER_DIR
    if is_postgres(setting("DATABASE_URL", environ, env_file)) or postgres.kept_port(directory) is None:
        yield dict(environ)
        return
    with postgres.kept_cluster(directory, environ, lambda _: None) as cluster:
        say(f"accounts: the fleet's registry, in its PostgreSQL ({directory})")
        yield {**environ, "DATABASE_URL": cluster.url()}


def run(python: Path, root: Path, environ: Mapping[str, str] = os.environ) -> int:
    """`./run.sh fleet`. Whatever happens, what was started is stopped on the way out (SIGTERM too ends
    the run that way, exit 143), and neither Ctrl+C nor SIGTERM can cut that short."""
    stack = ExitStack()
    previous = _handle_signals({signal.SIGTERM: _terminated})
    try:
        return _start_and_watch(stack, python, root, environ)
    except postgres.Unavailable as exc:
        say(f"The fleet needs PostgreSQL: install it (Debian: apt-get install postgresql) or set "
            f"DATABASE_URL=postgresql+asyncpg://... ({exc})")
        return 2
    except FleetError as exc:  # the accounts could not be read: the database or the master key
        say(str(exc))
        return 2
    finally:
        held = _handle_signals({signal.SIGINT: signal.SIG_IGN, signal.SIGTERM: signal.SIG_IGN})
        try:
            stack.close()
        finally:
            _handle_signals({**held, **previous})  # SIGINT's from before the stop, SIGTERM's from before


Handler = Callable[[int, FrameType | None], Any] | int | None


def _terminated(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _handle_signals(handlers: Mapping[int, Handler]) -> dict[int, Handler]:
    """Install `handlers`; the ones they replace. Where signals can't be handled (Windows has no SIGTERM
    handler to speak of; a thread other than the main one can set none), nothing changes."""
    previous: dict[int, Handler] = {}
    for signum, handler in handlers.items():
        with suppress(ValueError, TypeError, OSError):
            previous[signum] = signal.signal(signum, handler)
    return previous


def _start_and_watch(stack: ExitStack, python: Path, root: Path, environ: Mapping[str, str]) -> int:
    server_dir = root / "trading-server"
    env_file = read_env_file(server_dir / ".env")

    def get(name: str) -> str | None:
        return setting(name, environ, env_file)

    data_dir = server_path(get("DATA_DIR"), DEFAULT_DATA_DIR, server_dir)
    log_dir = server_path(get("LOG_DIR"), str(root / "logs"), server_dir)
    logs = log_dir / "fleet"
    mode = (get("TRADING_MODE") or "paper").lower()
    paper = mode == "paper" and get("BLOFIN_BASE_URL") is None
    env = dict(environ)
    env["FLEET"] = "true"

    database_url = get("DATABASE_URL")
    if is_postgres(database_url):
        say(f"the fleet's database: DATABASE_URL ({without_password(str(database_url))})")
    else:
        if database_url:
            say("DATABASE_URL is not PostgreSQL: the fleet uses its own PostgreSQL cluster instead")
        cluster = stack.enter_context(postgres.kept_cluster(data_dir / CLUSTER_DIR, environ, say))
        database_url = cluster.url()
    env["DATABASE_URL"] = str(database_url)

    private = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hit-fleet-")))
    sim_file = private / "sim-accounts.json" if paper else None
    accounts = read_accounts(python, env, server_dir, sim_file)
    services: list[Service] = []
    stack.callback(stop_all, services)

    sources: dict[str, str] = {}
    if sim_file is not None:  # paper: the simulator
        simulator = _simulator(python, env, server_dir, logs, sim_file if accounts.groups else None, get)
        services.append(simulator.service)
        simulator.service.start()
        if not launcher.wait_healthy(f"{simulator.url}/api/v1/market/instruments", simulator.service):
            return _did_not_start(simulator.service)
        sim_file.unlink(missing_ok=True)  # read: the keys are in the simulator's memory only
        env.update(SIM_DEFAULT_CREDENTIALS, BLOFIN_BASE_URL=simulator.url)
        sources = loopback_sources(list(accounts.groups))

    url = launcher.server_url(env, server_dir)
    server_cmd = [str(python), "-m", "hit_server"]
    server = Service("trading server", server_cmd, env, server_dir, logs / "server.log")
    services.append(server)
    server.start()
    if not launcher.wait_healthy(f"{url}/health", server):
        return _did_not_start(server)
    for group in accounts.groups:
        cmd = [str(python), "-m", "hit_server", "worker", "--egress", group]
        if group in sources:
            cmd += ["--source-address", sources[group]]
        worker = Service(f"worker {group}", cmd, env, server_dir, logs / f"worker-{group}.log")
        services.append(worker)
        worker.start()
    _summary(url, env, server_dir, accounts, logs, log_dir, mode=mode, paper=paper)
    return watch(services)


@dataclass(frozen=True)
class Simulator:
    service: Service
    url: str


def _simulator(python: Path, env: Mapping[str, str], server_dir: Path, logs: Path, accounts_file: Path | None,
               get: Callable[[str], str | None]) -> Simulator:
    """The standalone BloFin simulator on a free loopback port, its default account holding PAPER_BALANCE,
    its prices moving unless PAPER_PRICE_WALK is false, and the fleet's accounts when there are some."""
    port = launcher.free_port()
    cmd = [
        str(python), "-m", "hit_server.blofin_sim", "--host", "127.0.0.1", "--port", str(port),
        "--balance", get("PAPER_BALANCE") or DEFAULT_PAPER_BALANCE, "--seed", get("PAPER_SEED") or "0",
    ]
    if (get("PAPER_PRICE_WALK") or "true").lower() not in launcher.FALSE_WORDS:
        cmd.append("--walk")
    if accounts_file is not None:
        cmd += ["--accounts", str(accounts_file)]
    service = Service("BloFin simulator", cmd, env, server_dir, logs / "simulator.log")
    return Simulator(service, f"http://127.0.0.1:{port}")


def _did_not_start(service: Service) -> int:
    say(f"the {service.name} did not start; its last lines ({service.output}):")
    print(service.output_tail(), flush=True)
    return 1


def _summary(url: str, env: Mapping[str, str], server_dir: Path, accounts: FleetAccounts, logs: Path,
             log_dir: Path, *, mode: str, paper: bool) -> None:
    say(launcher.dashboard_line(url, env, server_dir))
    if paper:
        say(f"paper: the BloFin simulator at {env['BLOFIN_BASE_URL']} holds the server's account and the "
            "fleet's, starting afresh each run")
    if accounts.groups:
        for group, names in accounts.groups.items():
            say(f"egress group {group}: a worker for {len(names)} account(s): {', '.join(names)}")
        say("an account added or enabled now is traded after a restart of ./run.sh fleet")
    else:
        say("no enabled account yet: add one with ./run.sh accounts add NAME (keys from stdin or a "
            "prompt), then start ./run.sh fleet again; the server runs meanwhile")
    for name, why in accounts.unreadable.items():
        say(f"account {name} is left out: {why}")
    say(f"logs: each service's console in {logs}, the services' own logs in {log_dir}")
    if mode in {"demo", "live"}:
        say(f"WARNING ({mode}): on one machine every egress group leaves from this machine's IP address, so "
            "BloFin's per-IP limits are shared by all of them; run each group's worker on the machine "
            "holding its IP (README, Accounts)")
    say("Ctrl+C stops everything")
