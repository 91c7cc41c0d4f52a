"""Local PostgreSQL clusters: a throwaway one for `./run.sh test`, and the fleet's kept one for
`./run.sh fleet`.

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

`kept_cluster(directory, environ)` is the fleet's (tools/fleet.py): the same binaries, installation and
`postgres` user, but a cluster that holds journals: created once in `directory` (its port chosen then
and kept in `directory/port`), fsync on, started for the with-block and stopped cleanly ("fast") at its
end, its data kept; found running, it is used and left to the run that started it, or stopped at the end
of this one when that run is gone (killed). It listens on 127.0.0.1 only, without a unix socket (a
socket's path under a deep directory can exceed the system's limit). Its programs and `pg_ctl start`
run in a session of their own, so a Ctrl+C at the terminal reaches only the launcher, which then stops
the cluster itself.
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
KEPT_DATABASE = "hit_fleet"  # the fleet's database in its kept cluster
PORT_FILE = "port"  # in a kept cluster's directory: its port, chosen at creation; written last
OWNER_FILE = "started-by"  # in a kept cluster's directory: the pid of the process that stops it
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
    """Where a cluster lives: everything under `root`. A throwaway one (the tests') is deleted at the
    end; a kept one (`kept=True`, the fleet's) holds journals: synced to disk, stopped cleanly, kept."""

    root: Path
    port: int
    kept: bool = False

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url(self) -> str:
        return test_url(self.port, KEPT_DATABASE if self.kept else DATABASE)


def test_url(port: int, database: str = DATABASE, user: str = SUPERUSER) -> str:
    """The SQLAlchemy URL of a local cluster's database, the tests' by default (asyncpg, the driver the
    server uses)."""
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
        "--auth", "trust", "--encoding", "UTF8", "--locale", "C", *([] if cluster.kept else ["--no-sync"]),
    ]


def server_settings(cluster: Cluster) -> str:
    """Lines appended to the cluster's postgresql.conf: local only; a throwaway cluster without
    durability, a kept one without a unix socket and with its port given at each start (`-p`)."""
    if cluster.kept:
        return (
            "\n# the fleet's cluster (tools/postgres.py): its port is in ../port\n"
            "listen_addresses = '127.0.0.1'\n"
            "unix_socket_directories = ''\n"
            "max_connections = 200\n"  # the API server and a worker per egress group, each with pools
        )
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
    port = ["-o", f"-p {cluster.port}"] if cluster.kept else []  # a kept cluster's port file is the truth
    return [
        binaries.program("pg_ctl"), "start", "--pgdata", str(cluster.data), "--log", str(cluster.log),
        *port, "--wait", "--timeout", str(START_TIMEOUT_S),
    ]


def stop_command(binaries: Binaries, cluster: Cluster) -> list[str]:
    """A throwaway cluster is stopped at once; a kept one cleanly (a checkpoint, then down)."""
    mode = "fast" if cluster.kept else "immediate"
    return [
        binaries.program("pg_ctl"), "stop", "--pgdata", str(cluster.data), "--mode", mode, "--wait",
        "--timeout", str(START_TIMEOUT_S),
    ]


def status_command(binaries: Binaries, cluster: Cluster) -> list[str]:
    """`pg_ctl status`: exit 0 when the cluster's server runs, 3 when it does not."""
    return [binaries.program("pg_ctl"), "status", "--pgdata", str(cluster.data)]


def createdb_command(binaries: Binaries, cluster: Cluster) -> list[str]:
    return [
        binaries.program("createdb"), "--host", "127.0.0.1", "--port", str(cluster.port),
        "--username", SUPERUSER, KEPT_DATABASE if cluster.kept else DATABASE,
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run(cmd: Sequence[str], cwd: Path, timeout: float = COMMAND_TIMEOUT_S, *,
         detached: bool = False) -> None:
    """Run quietly; on failure raise Unavailable with the command's last output lines. `detached`: in a
    session of its own (what it starts, a server, never sees the terminal's Ctrl+C)."""
    try:
        done = subprocess.run(
            list(cmd), cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
            check=False, start_new_session=detached,
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
    is_root = running_as_root()
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


def _binaries(*, is_root: bool, ci: bool, say: Callable[[str], None], root: Path = DEBIAN_ROOT) -> Binaries:
    binaries = find_binaries(root)
    if binaries is not None:
        return binaries
    if not may_install(is_root=is_root, ci=ci):
        raise Unavailable(f"no initdb/pg_ctl under {root}, and this run may not install packages "
                          "(only as root or with CI set)")
    return install(is_root=is_root, say=say)


# -- the fleet's kept cluster ----------------------------------------------------------------------------


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@contextmanager
def kept_cluster(
    directory: Path, environ: Mapping[str, str], say: Callable[[str], None], *,
    binaries_root: Path = DEBIAN_ROOT,
) -> Iterator[Cluster]:
    """The fleet's cluster in `directory`, created the first time, running for the with-block and stopped
    cleanly at its end whatever happens, its data kept. A cluster found running already (another launcher
    holds it) is used and left running. `Unavailable` (one sentence) when it can't be had."""
    is_root = running_as_root()
    began = time.monotonic()
    binaries = _kept_binaries(directory, binaries_root, is_root=is_root, ci=bool(environ.get("CI")), say=say)
    cluster = _kept(directory, binaries, is_root=is_root, say=say)
    started = False
    try:
        if not _is_running(binaries, cluster, is_root=is_root):
            _check_port_free(cluster)
            started = True
            _own(directory)
            try:
                _run(as_server_user(start_command(binaries, cluster), is_root=is_root), cwd=cluster.root,
                     detached=True)
            except Unavailable:
                raise Unavailable(_with_log(cluster)) from None
        elif _owner_alive(directory):
            say(f"the fleet's PostgreSQL in {directory} is running already: used, and left running")
        else:  # left running by a run that was killed: this one stops it
            started = True
            _own(directory)
        _create_database(binaries, cluster)
        say(f"the fleet's PostgreSQL {binaries.version} on 127.0.0.1:{cluster.port}, ready in "
            f"{time.monotonic() - began:.1f} s (its data kept in {cluster.data})")
        yield cluster
    finally:
        if started and (cluster.data / "postmaster.pid").exists():
            try:
                _run(as_server_user(stop_command(binaries, cluster), is_root=is_root), cwd=cluster.root,
                     detached=True)
            except Unavailable as exc:
                print(f"[hit] could not stop the fleet's PostgreSQL: {exc}", flush=True)


def kept_port(directory: Path) -> int | None:
    """The port of the kept cluster in `directory`, or None when there is no finished cluster there."""
    try:
        text = (directory / PORT_FILE).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and (directory / "data" / "PG_VERSION").is_file() else None


def _kept_binaries(directory: Path, binaries_root: Path, *, is_root: bool, ci: bool,
                   say: Callable[[str], None]) -> Binaries:
    """The programs of the version that made the cluster in `directory`, else the newest (installed when
    this run may install)."""
    try:
        made_by = (directory / "data" / "PG_VERSION").read_text().strip()
    except OSError:
        return _binaries(is_root=is_root, ci=ci, say=say, root=binaries_root)
    bindir = binaries_root / made_by / "bin"
    if not (bindir / "pg_ctl").is_file():
        raise Unavailable(f"the fleet's cluster in {directory} was made by PostgreSQL {made_by}, whose "
                          f"programs are not in {bindir} (install postgresql-{made_by})")
    return Binaries(bindir)


def _kept(directory: Path, binaries: Binaries, *, is_root: bool, say: Callable[[str], None]) -> Cluster:
    """The cluster in `directory`; made now (initdb, settings, then the port file) if not made yet."""
    port = kept_port(directory)
    if port is not None:
        return Cluster(directory, port, kept=True)
    cluster = Cluster(directory, free_port(), kept=True)
    say(f"creating the fleet's PostgreSQL cluster in {directory} (first run only)")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if is_root:
        _give_to_server_user(directory)
        _check_reachable(directory)
    if cluster.data.exists():  # a creation cut short before its port file: nothing was stored in it yet
        shutil.rmtree(cluster.data)
    _run(as_server_user(initdb_command(binaries, cluster), is_root=is_root), cwd=directory, detached=True)
    with (cluster.data / "postgresql.conf").open("a") as conf:
        conf.write(server_settings(cluster))
    (directory / PORT_FILE).write_text(f"{cluster.port}\n")
    return cluster


def _check_reachable(directory: Path) -> None:
    """As root the server runs as `postgres`, which must be able to enter every parent of `directory`."""
    cmd = as_server_user(["test", "-w", str(directory), "-a", "-x", str(directory)], is_root=True)
    if subprocess.call(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        raise Unavailable(f"the '{SERVER_USER}' user that runs PostgreSQL cannot enter {directory} (a "
                          "parent directory is private: make it searchable with chmod o+x, or set DATA_DIR)")


def _is_running(binaries: Binaries, cluster: Cluster, *, is_root: bool) -> bool:
    cmd = as_server_user(status_command(binaries, cluster), is_root=is_root)
    try:
        done = subprocess.run(cmd, cwd=cluster.root, stdin=subprocess.DEVNULL, capture_output=True,
                              check=False, timeout=COMMAND_TIMEOUT_S, start_new_session=True)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unavailable(f"pg_ctl status could not run: {exc}") from exc
    return done.returncode == 0


def _own(directory: Path) -> None:
    """This process started the cluster (or took it over) and stops it: its pid in OWNER_FILE."""
    (directory / OWNER_FILE).write_text(f"{os.getpid()}\n")


def _owner_alive(directory: Path) -> bool:
    """Whether the process that started the running cluster is still there to stop it."""
    if os.name == "nt":  # os.kill would end the process there; no kept cluster runs on Windows anyway
        return True
    try:
        pid = int((directory / OWNER_FILE).read_text().strip())
        os.kill(pid, 0)
    except PermissionError:
        return True  # someone else's process: alive
    except (OSError, ValueError):
        return False
    return True


def _check_port_free(cluster: Cluster) -> None:
    """A listener on the kept port: not ours (ours is not running). Connections left in TIME_WAIT by the
    last run don't count: PostgreSQL binds with SO_REUSEADDR, so does this probe."""
    with socket.socket() as sock:
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", cluster.port))
        except OSError:
            raise Unavailable(
                f"port {cluster.port} of the fleet's PostgreSQL (kept in {cluster.root / PORT_FILE}) is "
                "taken by another program: stop it, or write a free port in that file"
            ) from None


def _create_database(binaries: Binaries, cluster: Cluster) -> None:
    """The fleet's database, made the first time (an existing one is fine)."""
    try:
        _run(createdb_command(binaries, cluster), cwd=cluster.root, detached=True)
    except Unavailable as exc:
        if "already exists" not in str(exc):
            raise
