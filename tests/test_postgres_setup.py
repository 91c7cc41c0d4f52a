"""The throwaway PostgreSQL that `./run.sh test` starts for the journal tests (tools/postgres.py)."""

import importlib.util
import os
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_postgres():
    spec = importlib.util.spec_from_file_location("hit_tools_postgres", ROOT / "tools" / "postgres.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


pg = load_postgres()


def fake_version(root: Path, version: str, programs: tuple[str, ...] = ("initdb", "pg_ctl")) -> Path:
    bindir = root / version / "bin"
    bindir.mkdir(parents=True)
    for name in programs:
        (bindir / name).write_text("")
    return bindir


def test_postgres_url_names_asyncpg_on_loopback():
    assert pg.test_url(5433) == "postgresql+asyncpg://hit@127.0.0.1:5433/hit_test"


def test_postgres_binaries_newest_version_with_initdb_and_pg_ctl(tmp_path):
    fake_version(tmp_path, "13")
    newest = fake_version(tmp_path, "15")
    fake_version(tmp_path, "16", programs=("pg_ctl",))  # a client-only or broken install
    found = pg.find_binaries(tmp_path)
    assert found is not None and found.bindir == newest and found.version == "15"
    assert found.program("initdb") == str(newest / "initdb")


def test_postgres_binaries_none_when_nothing_is_installed(tmp_path):
    assert pg.find_binaries(tmp_path) is None
    assert pg.find_binaries(tmp_path / "missing") is None


def test_postgres_server_commands_run_as_the_postgres_user_only_as_root():
    cmd = ["/usr/lib/postgresql/15/bin/initdb", "--pgdata", "/srv/pg"]
    assert pg.as_server_user(cmd, is_root=True) == ["runuser", "-u", "postgres", "--", *cmd]
    assert pg.as_server_user(cmd, is_root=False) == cmd


def test_postgres_install_is_apt_get_update_then_install_through_sudo_unless_root():
    as_root = pg.install_commands(is_root=True)
    assert as_root[0] == ["apt-get", "update"]
    assert as_root[1][:3] == ["apt-get", "install", "-y"] and as_root[1][-1] == "postgresql"
    assert all(cmd[:2] == ["sudo", "-n"] for cmd in pg.install_commands(is_root=False))


def test_postgres_install_never_on_a_developer_machine_without_root():
    assert not pg.may_install(is_root=False, ci=False)


def test_postgres_cluster_is_trusted_local_only_and_lives_in_its_directory(tmp_path):
    cluster = pg.Cluster(tmp_path / "it's", 6000)
    binaries = pg.Binaries(Path("/pg/15/bin"))
    initdb = pg.initdb_command(binaries, cluster)
    assert initdb[0] == "/pg/15/bin/initdb"
    assert str(cluster.data) in initdb and "trust" in initdb and "hit" in initdb
    settings = pg.server_settings(cluster)
    assert "listen_addresses = '127.0.0.1'" in settings
    assert "port = 6000" in settings
    assert f"unix_socket_directories = '{tmp_path}/it''s'" in settings  # a quote in the path doubled
    start = pg.start_command(binaries, cluster)
    assert start[:2] == ["/pg/15/bin/pg_ctl", "start"] and "--wait" in start
    assert str(cluster.log) in start
    assert pg.createdb_command(binaries, cluster)[-1] == "hit_test"
    assert "immediate" in pg.stop_command(binaries, cluster)


def test_postgres_url_from_the_environment_is_used_without_starting_anything(monkeypatch):
    said = []
    monkeypatch.setattr(pg, "find_binaries", lambda *a: pytest.fail("nothing may be looked for"))
    with pg.test_database({pg.URL_VARIABLE: "postgresql+asyncpg://u@h:1/d"}, said.append) as url:
        assert url == "postgresql+asyncpg://u@h:1/d"
    assert pg.URL_VARIABLE in said[0]


def test_postgres_missing_in_ci_is_a_failure(monkeypatch):
    monkeypatch.setattr(pg, "find_binaries", lambda *a: None)
    monkeypatch.setattr(pg, "may_install", lambda **kw: False)
    with pytest.raises(pg.Unavailable, match="may not install"), pg.test_database({"CI": "true"}, print):
        pytest.fail("the body must not run")


def test_postgres_missing_on_a_developer_machine_is_a_loud_skip(monkeypatch):
    monkeypatch.setattr(pg, "find_binaries", lambda *a: None)
    monkeypatch.setattr(pg, "may_install", lambda **kw: False)
    said = []
    with pg.test_database({}, said.append) as url:
        assert url is None
    assert any("SKIPPED" in line for line in said)


def test_postgres_cluster_is_stopped_and_deleted_when_the_run_fails():
    """A real cluster (the binaries ./run.sh test installs): usable inside, gone after an exception."""
    binaries = pg.find_binaries()
    if binaries is None:
        if os.environ.get("CI"):
            pytest.fail("./run.sh test installs PostgreSQL in CI, yet no initdb was found")
        pytest.skip("no PostgreSQL server binaries on this machine")
    is_root = os.geteuid() == 0
    with pytest.raises(RuntimeError, match="the tests failed"):
        with pg.cluster_running(binaries, is_root=is_root) as cluster:
            seen = cluster
            with socket.create_connection(("127.0.0.1", cluster.port), timeout=5):
                pass
            assert (cluster.data / "postmaster.pid").exists()
            raise RuntimeError("the tests failed")
    assert not seen.root.exists()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", seen.port)) != 0
