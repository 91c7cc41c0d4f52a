"""The fleet's kept PostgreSQL cluster (tools/postgres.py `kept_cluster`, for `./run.sh fleet`): made once,
started for a run, stopped at its end, its data kept; the throwaway test cluster's settings unchanged."""

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import postgres  # noqa: E402


def test_kept_cluster_is_durable_local_only_and_takes_its_port_at_each_start(tmp_path):
    kept = postgres.Cluster(tmp_path, 6001, kept=True)
    binaries = postgres.Binaries(Path("/pg/15/bin"))
    assert "--no-sync" not in postgres.initdb_command(binaries, kept)
    settings = postgres.server_settings(kept)
    assert "listen_addresses = '127.0.0.1'" in settings
    assert "unix_socket_directories = ''" in settings
    assert "fsync" not in settings and "port =" not in settings  # fsync stays on; the port file is the truth
    start = postgres.start_command(binaries, kept)
    assert start[start.index("-o") + 1] == "-p 6001"
    stop = postgres.stop_command(binaries, kept)
    assert stop[stop.index("--mode") + 1] == "fast"
    assert postgres.createdb_command(binaries, kept)[-1] == "hit_fleet"
    assert kept.url() == "postgresql+asyncpg://hit@127.0.0.1:6001/hit_fleet"
    throwaway = postgres.Cluster(tmp_path, 6001)
    assert "fsync = off" in postgres.server_settings(throwaway)
    assert "--no-sync" in postgres.initdb_command(binaries, throwaway)
    stop = postgres.stop_command(binaries, throwaway)
    assert stop[stop.index("--mode") + 1] == "immediate"
    assert "-o" not in postgres.start_command(binaries, throwaway)


def test_kept_port_only_for_a_cluster_whose_making_finished(tmp_path):
    assert postgres.kept_port(tmp_path) is None
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "PG_VERSION").write_text("15\n")
    assert postgres.kept_port(tmp_path) is None  # initdb ran, the port file was never written
    (tmp_path / "port").write_text("6002\n")
    assert postgres.kept_port(tmp_path) == 6002


def test_kept_cluster_without_postgresql_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setattr(postgres, "may_install", lambda **kw: False)
    with pytest.raises(postgres.Unavailable, match="may not install"):
        with postgres.kept_cluster(tmp_path / "pg", {}, print, binaries_root=tmp_path / "none"):
            pytest.fail("the body must not run")


@pytest.fixture
def binaries() -> postgres.Binaries:
    found = postgres.find_binaries()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("./run.sh test installs PostgreSQL in CI, yet no initdb was found")
        pytest.skip("no PostgreSQL server binaries on this machine")
    return found


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A DATA_DIR the `postgres` user can enter when the tests run as root (pytest's tmp_path is private)."""
    with tempfile.TemporaryDirectory(prefix="hit-fleet-pg-") as tmp:
        os.chmod(tmp, 0o755)  # noqa: S103 - the server user must enter it; nothing secret in it
        yield Path(tmp)


def psql(binaries: postgres.Binaries, cluster: postgres.Cluster, sql: str) -> str:
    cmd = [binaries.program("psql"), "--host", "127.0.0.1", "--port", str(cluster.port), "--username", "hit",
           "--dbname", "hit_fleet", "--no-psqlrc", "--tuples-only", "--no-align", "--command", sql]
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout.strip()


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_kept_cluster_made_once_stopped_at_the_end_and_its_data_kept(binaries, data_dir):
    directory = data_dir / "fleet-postgres"
    said: list[str] = []
    with postgres.kept_cluster(directory, {}, said.append) as first:
        assert any("first run only" in line for line in said)
        psql(binaries, first, "CREATE TABLE journal (id int); INSERT INTO journal VALUES (42)")
        assert not list(directory.glob(".s.PGSQL.*"))  # TCP on 127.0.0.1 only
    assert not port_open(first.port)
    assert not (first.data / "postmaster.pid").exists()
    assert (directory / "port").read_text().strip() == str(first.port)

    said.clear()
    with pytest.raises(RuntimeError, match="the fleet failed"):
        with postgres.kept_cluster(directory, {}, said.append) as again:
            assert again.port == first.port  # chosen once
            assert not any("first run only" in line for line in said)
            assert psql(binaries, again, "SELECT id FROM journal") == "42"
            assert "on" in psql(binaries, again, "SHOW fsync")
            raise RuntimeError("the fleet failed")
    assert not port_open(first.port)  # stopped whatever happened


def test_kept_cluster_found_running_is_used_and_left_running(binaries, data_dir):
    directory = data_dir / "fleet-postgres"
    with postgres.kept_cluster(directory, {}, print) as outer:
        said: list[str] = []
        with postgres.kept_cluster(directory, {}, said.append) as inner:
            assert inner.port == outer.port
            assert any("running already" in line for line in said)
        assert psql(binaries, outer, "SELECT 1") == "1"  # the inner run did not stop it
    assert not port_open(outer.port)


def test_kept_cluster_left_running_by_a_killed_run_is_stopped_by_the_next(binaries, data_dir):
    directory = data_dir / "fleet-postgres"
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time; sys.path.insert(0, sys.argv[1]); import postgres\n"
            "with postgres.kept_cluster(postgres.Path(sys.argv[2]), {}, print):\n"
            "    print('up', flush=True); time.sleep(300)\n"
        ), str(ROOT / "tools"), str(directory)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None
        while (line := holder.stdout.readline()) and line.strip() != "up":
            pass
        assert line.strip() == "up", "the holder started its cluster"
    finally:
        holder.kill()  # SIGKILL: its `finally` never runs, the cluster stays up
        holder.wait(30)
    port = postgres.kept_port(directory)
    assert port is not None and port_open(port)
    said: list[str] = []
    with postgres.kept_cluster(directory, {}, said.append) as cluster:
        assert psql(binaries, cluster, "SELECT 1") == "1"
        assert not any("left running" in line for line in said)
    assert not port_open(port)
