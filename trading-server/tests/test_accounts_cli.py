"""`python -m hit_server accounts ...` end to end in a subprocess: keys from stdin, never in the output;
bad input is one line and exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hit_server.testing import clean_env

SECRET = "cli-SECRET-never-printed-5d4c"
PASSPHRASE = "cli-PASSPHRASE-never-printed-77"
API_KEY = "cliK-api-key-000111"


def accounts(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = clean_env(DATA_DIR=str(data_dir), TRADING_MODE="paper")
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


def test_accounts_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    keys = f"{API_KEY}\n{SECRET}\n{PASSPHRASE}\n"
    assert accounts(tmp_path, "add", "alice", stdin=keys).returncode == 0
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
        result = accounts(tmp_path, *args, stdin=stdin)
        assert result.returncode == 2, (args, result.stderr)
        assert expected in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, (
            result.stderr
        )
        assert SECRET not in result.stdout + result.stderr
