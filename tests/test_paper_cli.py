"""`./run.sh paper price SYMBOL PRICE` and `./run.sh paper prices` (tools/paper_cli.py through
tools/hitctl.py, the entry point run.ps1 calls too) against a real trading server on a loopback port:
one line for a move, a listing, and one sentence, never a traceback, when it can't be done."""

from __future__ import annotations

import importlib.util
import io
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

from hit_server.blofin_sim import create_app as create_sim
from hit_server.blofin_sim.testing import TEST_KEY, TEST_PASSPHRASE, TEST_SECRET, make_config
from hit_server.server import create_app
from hit_server.settings import Settings
from hit_server.testing import TEST_API_KEY, UvicornThread, clean_env, free_port, paper_settings

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def serving(settings: Settings) -> Iterator[tuple[UvicornThread, Any]]:
    """The trading server with `settings`, its lifespan running, on a free loopback port."""
    app = create_app(settings)
    with UvicornThread(app, lifespan="on") as server:
        yield server, app


def cli(port: int, *args: str, key: str = TEST_API_KEY) -> subprocess.CompletedProcess[str]:
    """`./run.sh paper ...` as a user runs it, with the server's address and key in the environment."""
    env = clean_env(HOST="127.0.0.1", PORT=str(port), API_KEYS=key)
    return subprocess.run(
        [str(ROOT / "run.sh"), "paper", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def sentence(done: subprocess.CompletedProcess[str]) -> str:
    """What a refused command said: exactly one line on stderr, no traceback, nothing on stdout."""
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == "" and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_paper_cli_moves_a_price_then_lists_it(tmp_path: Path) -> None:
    with serving(paper_settings(tmp_path)) as (server, app):
        moved = cli(server.port, "price", "ETH-USDT", "3050")
        listed = cli(server.port, "prices")
        sim = app.state.sim_app.state.sim
        assert sim.prices["ETH-USDT"] == Decimal(3050)

    assert (moved.returncode, moved.stdout, moved.stderr) == (0, "ETH-USDT paper price 3050 (was 3000)\n", "")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert re.fullmatch(r"ETH-USDT +3050", next(line for line in lines if line.startswith("ETH-USDT")))
    assert re.fullmatch(r"LUNA-USDT +0\.5 +\(suspend\)", next(ln for ln in lines if ln.startswith("LUNA")))
    assert re.fullmatch(r"\d+ paper symbols; prices from model", lines[-1]), lines[-1]
    assert int(lines[-1].split()[0]) == len(lines) - 1 >= 50


def test_paper_cli_says_so_when_the_server_is_down() -> None:
    port = free_port()  # nothing listens there
    said = sentence(cli(port, "price", "ETH-USDT", "3050"))

    assert f"not answering at http://127.0.0.1:{port}" in said and "./run.sh server" in said


def test_paper_cli_refuses_an_unknown_symbol_and_a_bad_price_in_one_sentence(tmp_path: Path) -> None:
    with serving(paper_settings(tmp_path)) as (server, app):
        unknown = sentence(cli(server.port, "price", "NOPE-USDT", "3"))
        bad = sentence(cli(server.port, "price", "ETH-USDT", "three"))
        wrong_key = sentence(cli(server.port, "prices", key="not-the-key-" + "x" * 30))
        assert app.state.sim_app.state.sim.prices["ETH-USDT"] == Decimal(3000)

    assert "'NOPE-USDT' is not in the paper catalogue" in unknown
    assert "Field 'price' is invalid" in bad
    assert "refused the API key from API_KEYS" in wrong_key


def test_paper_cli_in_live_mode_says_prices_are_not_ours(tmp_path: Path) -> None:
    with UvicornThread(create_sim(make_config())) as sim:
        settings = paper_settings(
            tmp_path,
            trading_mode="live",
            blofin_base_url=sim.url,
            blofin_api_key=TEST_KEY,
            blofin_api_secret=TEST_SECRET,
            blofin_passphrase=TEST_PASSPHRASE,
            monitor_websocket=False,
        )
        with serving(settings) as (server, _):
            said = sentence(cli(server.port, "price", "ETH-USDT", "3050"))

    assert said.startswith("Not in paper mode:") and "live mode" in said


def load_paper_cli() -> ModuleType:
    """tools/paper_cli.py as hitctl.py imports it (tools/ is not a package)."""
    sys.path.insert(0, str(ROOT / "tools"))
    return importlib.import_module("paper_cli")


def test_paper_cli_reads_the_port_from_the_env_file_and_the_key_a_paper_server_generated(
    tmp_path: Path,
) -> None:
    """No API_KEYS anywhere: the paper server writes its key to DATA_DIR/api_key, where the command
    finds it, DATA_DIR being relative to trading-server/ as `./run.sh server` runs it."""
    root = tmp_path / "checkout"
    server_dir = root / "trading-server"
    settings = paper_settings(server_dir / "paper-data", api_keys="")
    paper_cli = load_paper_cli()
    out, err = io.StringIO(), io.StringIO()
    with serving(settings) as (server, _):
        (server_dir / ".env").write_text(f"PORT={server.port}\nDATA_DIR=paper-data  # the journal and key\n")
        code = paper_cli.main(["price", "btc", "60500.04"], root, {}, out, err)

    assert (server_dir / "paper-data" / "api_key").is_file()
    assert (code, out.getvalue(), err.getvalue()) == (0, "BTC-USDT paper price 60500 (was 60000)\n", "")


def test_paper_cli_usage() -> None:
    done = subprocess.run(
        [str(ROOT / "run.sh"), "paper", "price", "ETH-USDT"],
        env=clean_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert (
        done.returncode == 2 and "paper price SYMBOL PRICE" in done.stderr and "Traceback" not in done.stderr
    )
