"""`python -m hit_server accounts ...` end to end in a subprocess: keys from stdin, never in the output;
bad input is one line and exit code 2."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hit_server.accounts import cli
from hit_server.testing import SERVICE_ENV_PREFIXES, clean_env

SECRET = "cli-SECRET-never-printed-5d4c"
PASSPHRASE = "cli-PASSPHRASE-never-printed-77"
API_KEY = "cliK-api-key-000111"


def accounts(
    data_dir: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = clean_env(DATA_DIR=str(data_dir), TRADING_MODE="paper", **(env or {}))
    return subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "hit_server", "accounts", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_accounts_cli_end_to_end(tmp_path: Path) -> None:
    keys = f"{API_KEY}\n{SECRET}\n{PASSPHRASE}\n"
    outputs = []
    added = accounts(tmp_path, "add", "alice", "--risk-percent", "0.5", "--allow", "btc-usdt", stdin=keys)
    outputs.append(added)
    assert added.returncode == 0, added.stderr
    assert "alice added" in added.stdout and "master_key" in added.stdout
    listed = accounts(tmp_path, "list")
    outputs.append(listed)
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "ENABLED", "KEYS"]
    assert lines[1].split()[:3] == ["default", "yes", "none"]
    assert lines[2].split()[:5] == ["alice", "yes", "stored", "cliK…", "0.5"] and "BTC-USDT" in lines[2]
    for args in (("disable", "alice"), ("set", "alice", "--max-leverage", "3", "--egress", "eu-1")):
        done = accounts(tmp_path, *args)
        outputs.append(done)
        assert done.returncode == 0, done.stderr
    rotated = accounts(
        tmp_path, "rotate-key", "alice", stdin=f"newK-key-12345678\nNEW-{SECRET}\nNEW-{PASSPHRASE}\n"
    )
    outputs.append(rotated)
    assert rotated.returncode == 0, rotated.stderr
    listed = accounts(tmp_path, "list")
    outputs.append(listed)
    assert listed.stdout.splitlines()[2].split()[:8] == [
        "alice",
        "no",
        "stored",
        "newK…",
        "0.5",
        "server",
        "3",
        "eu-1",
    ]
    for result in outputs:
        for secret in (SECRET, PASSPHRASE, API_KEY):
            assert secret not in result.stdout + result.stderr
    master = (tmp_path / "master_key").read_text().strip()
    assert all(master not in r.stdout + r.stderr for r in outputs)
    for raw in (p.read_bytes() for p in tmp_path.glob("journal.db*")):
        assert SECRET.encode() not in raw and PASSPHRASE.encode() not in raw


def in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data_dir: Path, *args: str,
    stdin: str = "",
) -> subprocess.CompletedProcess[str]:
    """The same command run by `accounts.cli.main` in this process (what `python -m hit_server accounts`
    calls), with the same environment as `accounts` gives the subprocess: a dozen bad inputs checked in
    a second instead of a dozen interpreters started."""
    for name in list(os.environ):
        if name.upper().startswith(SERVICE_ENV_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    monkeypatch.setenv("TRADING_MODE", "paper")
    try:
        code = cli.main(list(args), stdin=io.StringIO(stdin))
    except SystemExit as exc:  # argparse's own exit
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, captured.out, captured.err)


def test_accounts_cli_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = f"{API_KEY}\n{SECRET}\n{PASSPHRASE}\n"
    assert in_process(monkeypatch, capsys, tmp_path, "add", "alice", stdin=keys).returncode == 0
    cases = [
        (("add", "alice"), keys, "exists already"),
        (("add", "default"), keys, "server's own settings"),
        (("add", "Bad Name"), keys, "name"),
        (("add", "bob"), f"{API_KEY}\n", "three lines"),
        (("add", "bob", "--max-leverage", "500"), keys, "max_leverage"),
        (("set", "alice"), "", "nothing to change"),
        (("set", "nobody", "--max-leverage", "2"), "", "No account named 'nobody'"),
        (("disable", "default"), "", "server's own settings"),
        (("rotate-key", "nobody"), keys, "No account named 'nobody'"),
        (("frobnicate",), "", "invalid choice"),
        ((), "", "command"),
    ]
    for args, stdin, expected in cases:
        result = in_process(monkeypatch, capsys, tmp_path, *args, stdin=stdin)
        assert result.returncode == 2, (args, result.stderr)
        assert expected in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, (
            result.stderr
        )
        assert SECRET not in result.stdout + result.stderr


def test_accounts_cli_on_sqlite_and_postgresql(journal_url: str, tmp_path: Path) -> None:
    """DATABASE_URL names the journal (PostgreSQL here too); the master key comes from HIT_MASTER_KEY."""
    master = "ZmFrZS1idXQtd2VsbC1mb3JtZWQtbWFzdGVyLWtleSE="  # 32 bytes, URL-safe base64
    env = {"DATABASE_URL": journal_url, "HIT_MASTER_KEY": master}
    keys = f"{API_KEY}\n{SECRET}\n{PASSPHRASE}\n"
    added = accounts(tmp_path, "add", "carol", "--egress", "eu-2", stdin=keys, env=env)
    assert added.returncode == 0, added.stderr
    assert "master key was generated" not in added.stdout and not (tmp_path / "master_key").exists()
    listed = accounts(tmp_path, "list", env=env)
    assert listed.stdout.splitlines()[2].split()[:3] == ["carol", "yes", "stored"]
    for result in (added, listed):
        assert all(s not in result.stdout + result.stderr for s in (SECRET, PASSPHRASE, API_KEY, master))


def test_accounts_cli_database_failure_is_one_line_without_the_password(tmp_path: Path) -> None:
    result = accounts(
        tmp_path, "list", env={"DATABASE_URL": "postgresql+asyncpg://hit:pw-9x@127.0.0.1:1/none"}
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1 and "database cannot be used" in result.stderr
    assert "pw-9x" not in result.stderr and "Traceback" not in result.stderr


def test_accounts_cli_asks_for_keys_without_echo_at_a_terminal(tmp_path: Path) -> None:
    """At a terminal the keys are asked for with getpass: typed, not echoed, not in the output."""
    env = clean_env(DATA_DIR=str(tmp_path), TRADING_MODE="paper")
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal is its stdin, stdout and stderr
        os.execve(sys.executable, [sys.executable, "-m", "hit_server", "accounts", "add", "dave"], env)  # noqa: S606
    seen = b""
    try:
        for prompt, answer in ((b"API key: ", API_KEY), (b"secret: ", SECRET), (b"Passphrase: ", PASSPHRASE)):
            seen += read_until(fd, prompt, seen)
            os.write(fd, answer.encode() + b"\n")
        seen += read_until(fd, b"dave added", seen)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    for secret in (API_KEY, SECRET, PASSPHRASE):
        assert secret.encode() not in seen


def read_until(fd: int, wanted: bytes, before: bytes, within: float = 60.0) -> bytes:
    """What the terminal shows until `wanted` appears (after `before`), waiting for it, not for a time."""
    got = b""
    deadline = time.monotonic() + within
    while wanted not in got:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"no {wanted!r} within {within} s; the terminal showed {before + got!r}"
        got += os.read(fd, 4096)
    return got
