"""A throwaway PostgreSQL for the test run, so the journal's PostgreSQL tests run in `./run.sh test`.

Standard library only (it runs from tools/hitctl.py). `test_database(environ, say)` is a context
manager that yields the URL the tests read from HIT_TEST_POSTGRES_URL:
- a URL already in the environment is used as it is (nothing is started);
- otherwise the server binaries are found under /usr/lib/postgresql/<version>/bin (Debian's layout),
  installed with apt-get (`postgresql`) when missing and this run may install (root, or CI);
- a cluster is created in a temporary directory (initdb, trust authentication, listening only on
  127.0.0.1 on a free port, its unix socket in that directory, no fsync: it is thrown away), started with
  pg_ctl, given a database, and stopped and deleted at the end whatever happens.
initdb and postgres refuse to run as root, so as root they run as the `postgres` user (which the Debian
package creates) through runuser, in a directory that user owns.

In CI a PostgreSQL that cannot be started raises `Unavailable` (the run fails: the tests must not be
skipped there); elsewhere it says so loudly and yields None, and the PostgreSQL tests skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

URL_VARIABLE = "HIT_TEST_POSTGRES_URL"
DEBIAN_ROOT = Path("/usr/lib/postgresql")
SERVER_USER = "postgres"  # the account Debian's package creates; initdb refuses to run as root
SUPERUSER = "hit"  # the cluster's superuser (initdb -U), trusted on 127.0.0.1
DATABASE = "hit_test"
START_ATTEMPTS = 3  # another process may take the free port between choosing it and binding it
START_TIMEOUT_S = 60
COMMAND_TIMEOUT_S = 120
INSTALL_TIMEOUT_S = 900


class Unavailable(Exception):
    """No PostgreSQL could be installed or started; in CI the test run fails with this message."""


@dataclass(frozen=True)
class Binaries:
    """The server programs of one PostgreSQL version."""

    bindir: Path

    def program(self, name: str) -> str:
        return str(self.bindir / name)

    @property
    def version(self) -> str:
        return self.bindir.parent.name


@dataclass(frozen=True)
class Cluster:
    """Where a throwaway cluster lives: everything under `root`, deleted at the end."""

    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url(self) -> str:
        return test_url(self.port)


def test_url(port: int, database: str = DATABASE, user: str = SUPERUSER) -> str:
    """The SQLAlchemy URL of the test database (asyncpg, the driver the server uses)."""
    return f"postgresql+asyncpg://{user}@127.0.0.1:{port}/{database}"


def find_binaries(root: Path = DEBIAN_ROOT) -> Binaries | None:
    """The newest version under `root` that has initdb and pg_ctl, or None."""
    found = []
    for bindir in root.glob("*/bin"):
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            version = bindir.parent.name
            found.append((int(version) if version.isdigit() else 0, bindir))
    return Binaries(max(found)[1]) if found else None


def install_commands(*, is_root: bool) -> list[list[str]]:
    """apt-get update + install of Debian's `postgresql`; through `sudo -n` when not root (a CI runner
    with password-less sudo), which fails at once rather than asking for a password."""
    prefix = [] if is_root else ["sudo", "-n"]
    return [
        [*prefix, "apt-get", "update"],
        [*prefix, "apt-get", "install", "-y", "--no-install-recommends", "postgresql"],
    ]


def may_install(*, is_root: bool, ci: bool) -> bool:
    """Installing system packages is for root or CI only; a developer's machine is left alone."""
    return (is_root or ci) and shutil.which("apt-get") is not None


def as_server_user(cmd: Sequence[str], *, is_root: bool) -> list[str]:
    """The command run as the `postgres` user when we are root (initdb and postgres refuse root)."""
    return ["runuser", "-u", SERVER_USER, "--", *cmd] if is_root else list(cmd)


def initdb_command(binaries: Binaries, cluster: Cluster) -> list[str]:
    return [
        binaries.program("initdb"), "--pgdata", str(cluster.data), "--username", SUPERUSER,
        "--auth", "trust", "--encoding", "UTF8", "--locale", "C", "--no-sync",
    ]


def server_settings(cluster: Cluster) -> str:
    """Lines appended to the cluster's postgresql.conf: local only, and no durability (thrown away)."""
    socket_dir = str(cluster.root).replace("'", "''")
    return (
        "\n# throwaway test cluster (tools/postgres.py)\n"
        "listen_addresses = '127.0.0.1'\n"
        f"port = {cluster.port}\n"
        f"unix_socket_directories = '{socket_dir}'\n"
        "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
        "max_connections = 200\n"  # the fleet tests run several worker processes, each with pools

    )


def start_command(binaries: Binaries, cluster: Cluster) -> list[str]:
    return [
        binaries.program("pg_ctl"), "start", "--pgdata", str(cluster.data), "--log", str(cluster.log),
        "--wait", "--timeout", str(START_TIMEOUT_S),
    ]


def stop_command(binaries: Binaries, cluster: Cluster) -> list[str]:
    return [
        binaries.program("pg_ctl"), "stop", "--pgdata", str(cluster.data), "--mode", "immediate", "--wait",
    ]


def createdb_command(binaries: Binaries, cluster: Cluster) -> list[str]:
    return [
        binaries.program("createdb"), "--host", "127.0.0.1", "--port", str(cluster.port),
        "--username", SUPERUSER, DATABASE,
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run(cmd: Sequence[str], cwd: Path, timeout: float = COMMAND_TIMEOUT_S) -> None:
    """Run quietly; on failure raise Unavailable with the command's last output lines."""
    try:
        done = subprocess.run(
            list(cmd), cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unavailable(f"{Path(cmd[0]).name} could not run: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise Unavailable(f"`{' '.join(cmd)}` failed (exit {done.returncode}):\n{tail}")


def install(*, is_root: bool, say: Callable[[str], None]) -> Binaries:
    say("PostgreSQL server binaries not found: installing Debian's postgresql package (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in install_commands(is_root=is_root):
        if subprocess.call(cmd, stdin=subprocess.DEVNULL, env=env, timeout=INSTALL_TIMEOUT_S) != 0:
            raise Unavailable(f"`{' '.join(cmd)}` failed (see above)")
    binaries = find_binaries()
    if binaries is None:
        raise Unavailable(f"apt-get installed postgresql, yet no initdb was found under {DEBIAN_ROOT}")
    return binaries


@contextmanager
def cluster_running(binaries: Binaries, *, is_root: bool) -> Iterator[Cluster]:
    """A started cluster with the test database; stopped and deleted on exit, whatever happened."""
    root = Path(tempfile.mkdtemp(prefix="hit-postgres-"))
    cluster = Cluster(root, free_port())
    try:
        if is_root:
            _give_to_server_user(root)
        _run(as_server_user(initdb_command(binaries, cluster), is_root=is_root), cwd=root)
        with (cluster.data / "postgresql.conf").open("a") as conf:
            conf.write(server_settings(cluster))
        cluster = _start(binaries, cluster, is_root=is_root)
        _run(createdb_command(binaries, cluster), cwd=root)
        yield cluster
    finally:
        if (cluster.data / "postmaster.pid").exists():
            try:
                _run(as_server_user(stop_command(binaries, cluster), is_root=is_root), cwd=root)
            except Unavailable as exc:
                print(f"[hit] could not stop the test PostgreSQL: {exc}", flush=True)
        shutil.rmtree(root, ignore_errors=True)


def _give_to_server_user(root: Path) -> None:
    try:
        shutil.chown(root, user=SERVER_USER, group=SERVER_USER)
    except (LookupError, OSError) as exc:
        raise Unavailable(f"the '{SERVER_USER}' user that runs PostgreSQL is missing: {exc}") from exc


def _start(binaries: Binaries, cluster: Cluster, *, is_root: bool) -> Cluster:
    """Start the server; on failure try another free port (another process may have taken this one
    between choosing and binding it), START_ATTEMPTS times in all."""
    for _ in range(START_ATTEMPTS - 1):
        try:
            _run(as_server_user(start_command(binaries, cluster), is_root=is_root), cwd=cluster.root)
            return cluster
        except Unavailable:
            cluster = Cluster(cluster.root, free_port())
            with (cluster.data / "postgresql.conf").open("a") as conf:
                conf.write(f"port = {cluster.port}\n")  # the last setting of a name wins
    try:
        _run(as_server_user(start_command(binaries, cluster), is_root=is_root), cwd=cluster.root)
    except Unavailable:
        raise Unavailable(_with_log(cluster)) from None
    return cluster


def _with_log(cluster: Cluster) -> str:
    try:
        tail = "\n".join(cluster.log.read_text(errors="replace").splitlines()[-15:])
    except OSError:
        tail = "(no server log)"
    return f"the PostgreSQL server did not start on 127.0.0.1:{cluster.port}; its log ends:\n{tail}"


@contextmanager
def test_database(environ: Mapping[str, str], say: Callable[[str], None]) -> Iterator[str | None]:
    """The URL for HIT_TEST_POSTGRES_URL, or None (not in CI) when no PostgreSQL can be had."""
    if environ.get(URL_VARIABLE):
        say(f"PostgreSQL tests use {URL_VARIABLE} from the environment")
        yield environ[URL_VARIABLE]
        return
    ci = bool(environ.get("CI"))
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    began = time.monotonic()
    with ExitStack() as stack:
        try:
            binaries = _binaries(is_root=is_root, ci=ci, say=say)
            cluster = stack.enter_context(cluster_running(binaries, is_root=is_root))
        except Unavailable as exc:
            if ci:
                raise
            _warn_skipped(say, exc)
            yield None
            return
        say(f"PostgreSQL {binaries.version} ready on 127.0.0.1:{cluster.port} in "
            f"{time.monotonic() - began:.1f} s (a throwaway cluster in {cluster.root})")
        yield cluster.url()


def _warn_skipped(say: Callable[[str], None], problem: Unavailable) -> None:
    say("!" * 100)
    say(f"PostgreSQL is not available, so the PostgreSQL journal tests are SKIPPED: {problem}")
    say(f"Install the postgresql package or set {URL_VARIABLE}; CI installs it and never skips them.")
    say("!" * 100)


def _binaries(*, is_root: bool, ci: bool, say: Callable[[str], None]) -> Binaries:
    binaries = find_binaries()
    if binaries is not None:
        return binaries
    if not may_install(is_root=is_root, ci=ci):
        raise Unavailable(f"no initdb/pg_ctl under {DEBIAN_ROOT}, and this run may not install packages "
                          "(only as root or with CI set)")
    return install(is_root=is_root, say=say)
