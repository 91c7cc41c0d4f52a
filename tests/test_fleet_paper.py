"""The paper fleet's accounts (`python -m hit_server.fleet.paper`, what `./run.sh fleet` runs): the
registry's enabled accounts by egress group on stdout, names only, and their keys in the simulator's
accounts file alone, mode 0600."""

import json
import os
import stat
import subprocess
import sys

from hit_server.blofin_sim.__main__ import load_accounts
from hit_server.testing import clean_env

MASTER = "ZmFrZS1idXQtd2VsbC1mb3JtZWQtbWFzdGVyLWtleSE="
KEYS = {
    "alice": ("alice-api-key-7f3a9c", "alice-secret-51e0d2b8", "alice-pass-93c1"),
    "bob": ("bob-api-key-2d8e4f", "bob-secret-c07a1e95", "bob-pass-6b2f"),
    "carol": ("carol-api-key-9a1b3c", "carol-secret-4e5f6a7b", "carol-pass-8c9d"),
}


def run(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], env=env, input=stdin, capture_output=True, text=True,
                          timeout=120, check=False)


def add(name: str, group: str, env: dict[str, str], *options: str) -> str:
    done = run(["hit_server", "accounts", "add", name, "--egress", group, *options], env,
               stdin="\n".join(KEYS[name]) + "\n")
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_the_accounts_file_holds_the_enabled_accounts_keys_and_nothing_else_does(tmp_path):
    data = tmp_path / "data"
    env = clean_env(DATA_DIR=str(data), LOG_DIR=str(tmp_path / "logs"), HIT_MASTER_KEY=MASTER,
                    PAPER_BALANCE="2500")
    outputs = [add("alice", "eu-1", env), add("bob", "us-1", env), add("carol", "eu-1", env, "--disabled")]
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    accounts_file = private / "sim-accounts.json"

    done = run(["hit_server.fleet.paper", "--sim-accounts", str(accounts_file)], env)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"groups": {"eu-1": ["alice"], "us-1": ["bob"]}, "unreadable": {}}
    assert stat.S_IMODE(accounts_file.stat().st_mode) == 0o600
    body = json.loads(accounts_file.read_text())
    assert body == {"accounts": [
        {"api_key": k, "api_secret": s, "passphrase": p, "balance": "2500"}
        for k, s, p in (KEYS["alice"], KEYS["bob"])  # carol is disabled: not served
    ]}
    assert [spec.api_key for spec in load_accounts(accounts_file)] == [KEYS["alice"][0], KEYS["bob"][0]]

    secrets = [value for name in ("alice", "bob") for value in KEYS[name]]
    for text in [*outputs, done.stdout, done.stderr]:
        assert not any(secret in text for secret in secrets)
    for path in tmp_path.rglob("*"):
        if path.is_file() and path != accounts_file:
            content = path.read_bytes()
            assert not any(secret.encode() in content for secret in secrets), path


def test_no_accounts_file_over_an_existing_file_and_none_needed_without_accounts(tmp_path):
    env = clean_env(DATA_DIR=str(tmp_path / "data"), LOG_DIR=str(tmp_path / "logs"), HIT_MASTER_KEY=MASTER)
    assert json.loads(run(["hit_server.fleet.paper"], env).stdout) == {"groups": {}, "unreadable": {}}
    existing = tmp_path / "placed-by-someone.json"
    existing.write_text("{}")
    done = run(["hit_server.fleet.paper", "--sim-accounts", str(existing)], env)
    assert done.returncode == 2 and "cannot be made" in done.stderr and "Traceback" not in done.stderr
    assert existing.read_text() == "{}"


def test_a_wrong_master_key_leaves_the_account_out_by_name(tmp_path):
    env = clean_env(DATA_DIR=str(tmp_path / "data"), LOG_DIR=str(tmp_path / "logs"), HIT_MASTER_KEY=MASTER)
    add("alice", "eu-1", env)
    other = {**env, "HIT_MASTER_KEY": "YW5vdGhlci13ZWxsLWZvcm1lZC1tYXN0ZXIta2V5ISE="}
    done = run(["hit_server.fleet.paper"], other)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["groups"] == {} and list(answer["unreadable"]) == ["alice"]
    assert os.environ.get("HIT_MASTER_KEY") != MASTER  # the test's own environment untouched
