"""The one entry point behind run.sh / run.ps1 and setup.sh / setup.ps1.

It uses only the standard library, so it runs on a fresh machine with nothing but Python 3.11+.
On first use it creates `.tools/uv` (a small virtual environment holding a pinned uv) and `.venv`
(the project's environment, synced from `uv.lock`); later runs only re-sync, which is a no-op when
nothing changed. The shell scripts stay thin: every decision lives here, where it is tested once.

Commands:
  setup   install (or update) the environment and stop
  test    ruff, mypy (strict) and every test, on one pytest worker per core (pytest-xdist; pass
          -n N to choose); extra arguments go to pytest. The journal's
          PostgreSQL tests run on a throwaway local cluster (tools/postgres.py), installed with
          apt-get when missing (as root or in CI); the dashboard's browser tests drive Debian's
          chromium (tools/browser.py), installed the same way
  demo    the whole system on paper, no credentials
  server  the trading server alone
  bot     the Discord bot alone
  screenshots  the dashboard's main pages as PNGs at desktop and phone widths (docs/screenshots/),
          from a paper server with a made-up history, in Debian's headless chromium (installed with
          apt-get when missing, as root or in CI)
  paper   move and list the running paper server's prices:
            paper price SYMBOL PRICE  (e.g. paper price ETH-USDT 3050)
            paper prices
  accounts  the accounts registry: accounts add|list|set|enable|disable|rotate-key (keys from stdin
          or a hidden prompt, never arguments)
  fleet   the whole fleet on one machine (tools/fleet.py): PostgreSQL (DATABASE_URL, else a cluster
          of its own in DATA_DIR/fleet-postgres, installed with apt-get when missing, as root or in CI),
          in paper mode the BloFin simulator with the registry's accounts, the API server with
          FLEET=true and one worker per egress group; Ctrl+C stops them all
  (none)  server and bot together
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import venv
from collections.abc import Sequence
from pathlib import Path

import browser
import fleet
import launcher
import paper_cli
import postgres

ROOT = Path(__file__).resolve().parent.parent
UV_VERSION = "0.13.9"
MIN_PYTHON = (3, 11)
PYTEST_NO_TESTS_COLLECTED = 5
EXIT_CTRL_C = 130  # what a shell reports for a program stopped by SIGINT (128 + 2)
WINDOWS = os.name == "nt"


def venv_bin(env_dir: Path, name: str) -> Path:
    """Path of an executable inside a virtual environment, on Windows and elsewhere."""
    if WINDOWS:
        return env_dir / "Scripts" / f"{name}.exe"
    return env_dir / "bin" / name


def say(message: str) -> None:
    print(f"[hit] {message}", flush=True)


def run(cmd: Sequence[str | Path], env: dict[str, str] | None = None) -> int:
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, env=env)


def ensure_uv() -> Path:
    """A pinned uv in `.tools/uv`, installed with the running interpreter's pip on first use."""
    tool_env = ROOT / ".tools" / "uv"
    uv = venv_bin(tool_env, "uv")
    stamp = tool_env / "uv-version.txt"
    if uv.exists() and stamp.exists() and stamp.read_text().strip() == UV_VERSION:
        return uv
    say(f"installing uv {UV_VERSION} into .tools/uv (first run only)")
    if tool_env.exists():
        shutil.rmtree(tool_env)
    venv.EnvBuilder(with_pip=True, clear=True).create(tool_env)
    pip_cmd: list[str | Path] = [venv_bin(tool_env, "python"), "-m", "pip", "install", "--quiet"]
    if run([*pip_cmd, f"uv=={UV_VERSION}"]) != 0:
        raise SystemExit("could not install uv from PyPI: check the network and try again")
    stamp.write_text(UV_VERSION)
    return uv


def uv_env() -> dict[str, str]:
    env = dict(os.environ)
    env["UV_PYTHON"] = sys.executable
    env["UV_PROJECT_ENVIRONMENT"] = str(ROOT / ".venv")
    env.setdefault("UV_NO_PROGRESS", "1")
    return env


def setup() -> Path:
    """Create or update `.venv` from the lock file; returns the environment's python."""
    uv = ensure_uv()
    say("syncing .venv with uv.lock")
    cmd: list[str | Path] = [uv, "sync", "--locked", "--all-packages", "--all-extras", "--quiet"]
    if run(cmd, env=uv_env()) != 0:
        raise SystemExit("installing the project failed (see the lines above)")
    return venv_bin(ROOT / ".venv", "python")


def venv_tool(name: str) -> Path:
    return venv_bin(ROOT / ".venv", name)


def pytest_outcome(code: int) -> tuple[bool, str]:
    """pytest's exit code read strictly: a run that collected nothing is a failure, never a pass."""
    if code == 0:
        return True, "all tests passed"
    if code == PYTEST_NO_TESTS_COLLECTED:
        return False, "pytest collected no tests: that is a failure, not a pass"
    return False, f"pytest failed (exit {code})"


def parallel(pytest_args: Sequence[str]) -> list[str]:
    """pytest's arguments with one worker per core unless they choose (-n/--numprocesses, or -p no:xdist).

    Most tests wait on processes they started (a suite alone keeps under one core busy), so two workers
    halve the run on two cores; `worksteal` keeps the long tests from queueing behind each other."""
    args = list(pytest_args)
    chosen = any(a in ("-n", "--numprocesses", "no:xdist") or a.startswith(("-n", "--numprocesses="))
                 for a in args)
    return args if chosen else ["-n", "auto", "--dist", "worksteal", *args]


def test(pytest_args: Sequence[str]) -> int:
    python = setup()
    steps: list[tuple[str, list[str | Path]]] = [
        ("ruff", [venv_tool("ruff"), "check", "."]),
        ("mypy", [python, "-m", "mypy"]),
    ]
    env = dict(os.environ)
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    for name, cmd in steps:
        say(f"{name} ...")
        if run(cmd, env=env) != 0:
            say(f"{name} failed")
            return 1
    try:
        env.update(browser.ensure(env, say))
    except browser.Unavailable as exc:
        say(f"Chromium for the browser tests could not be installed (in CI that is a failure): {exc}")
        return 1
    try:
        with postgres.test_database(env, say) as postgres_url:
            if postgres_url is not None:
                env[postgres.URL_VARIABLE] = postgres_url
            say("pytest ...")
            ok, message = pytest_outcome(run([python, "-m", "pytest", *parallel(pytest_args)], env=env))
    except postgres.Unavailable as exc:
        say(f"PostgreSQL for the journal tests could not be started (in CI that is a failure): {exc}")
        return 1
    say(message)
    return 0 if ok else 1


def screenshots(args: Sequence[str]) -> int:
    python = setup()
    env = dict(os.environ)
    try:
        env.update(browser.obtain(env, say).environ())
    except browser.Unavailable as exc:
        say(f"the screenshots need Debian's chromium and chromium-driver: {exc}")
        return 1
    return run([python, ROOT / "docs" / "screenshots.py", *args], env=env)


def run_in_foreground(cmd: Sequence[str | Path], env: dict[str, str] | None = None) -> int:
    """A service attached to this console until it exits; its exit code.

    Ctrl+C reaches the service too (same console, same process group), and the service shuts down
    cleanly on it (the server saves its paper account, the bot its state). So on Ctrl+C this waits for
    that shutdown, where `subprocess.call` would kill the service a quarter second later, and then
    lets the KeyboardInterrupt go on to `cli`, which says one line.
    """
    proc = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        let_it_stop(proc)
        raise


def let_it_stop(proc: subprocess.Popen[bytes]) -> None:
    """Wait for a service that got Ctrl+C to end; terminate it if it takes too long or Ctrl+C comes again."""
    try:
        proc.wait(launcher.STOP_GRACE_S)
        return
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        proc.terminate()
    try:
        proc.wait(launcher.STOP_GRACE_S)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        proc.kill()
        proc.wait()


def module_command(module: str, args: Sequence[str]) -> int:
    python = setup()
    return run_in_foreground([python, "-m", module, *args])


def launch(command: str, args: Sequence[str]) -> int:
    """What the launchers start together: `run` (server and bot), `demo` (tools/launcher.py) and `fleet`
    (tools/fleet.py, which takes no arguments)."""
    if command != "fleet":
        return launcher.main([command, *args], setup(), ROOT)
    if args:
        print(__doc__, file=sys.stderr)
        return 2
    return fleet.run(setup(), ROOT)


def accounts(args: Sequence[str]) -> int:
    """`python -m hit_server accounts ...` on the registry the fleet uses: with the fleet's own PostgreSQL
    cluster when it has one and DATABASE_URL names none (tools/fleet.py `accounts_environment`)."""
    python = setup()
    try:
        with fleet.accounts_environment(ROOT, os.environ) as env:
            return run_in_foreground([python, "-m", "hit_server", "accounts", *args], env)
    except postgres.Unavailable as exc:
        say(f"accounts: the fleet's PostgreSQL could not be started ({exc})")
        return 2


def let_ctrl_c_through() -> None:
    """Stop ignoring SIGINT if whoever started us made us ignore it.

    A shell without job control (a script, `nohup ... &`, some CI runners) starts background commands
    with SIGINT ignored, and an ignored signal stays ignored in every program they start. Ctrl+C (or
    `kill -INT`) would then stop nothing, and the launcher's polite stop of the server and the bot
    (SIGINT) would wait STOP_GRACE_S for nothing before it terminates them, without their clean
    shutdown. A handler of our own is reset to the default in each child, so they all hear it again."""
    if os.name != "nt" and signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: Sequence[str] | None = None) -> int:
    if sys.version_info < MIN_PYTHON:
        print("HIT needs Python 3.11 or newer", file=sys.stderr)
        return 2
    let_ctrl_c_through()
    args = list(sys.argv[1:] if argv is None else argv)
    command, rest = (args[0], args[1:]) if args else ("run", [])
    if command == "setup":
        setup()
        say("ready: .venv is installed")
        return 0
    if command == "test":
        return test(rest)
    if command in {"demo", "run", "fleet"}:
        return launch(command, rest)
    if command == "server":
        return module_command("hit_server", rest)
    if command == "bot":
        return module_command("hit_bot", rest)
    if command == "accounts":  # the accounts registry; keys from stdin or a hidden prompt (accounts/cli.py)
        return accounts(rest)
    if command == "screenshots":
        return screenshots(rest)
    if command == "paper":  # standard library only: no environment to set up
        return paper_cli.main(rest, ROOT, os.environ, sys.stdout, sys.stderr)
    print(__doc__, file=sys.stderr)
    return 2


def cli(argv: Sequence[str] | None = None) -> int:
    """`main` as the shell scripts run it: Ctrl+C ends it with one line and exit code 130, no traceback.

    Whatever was running has been stopped on the way out (`run_in_foreground`, the launcher's
    `supervise` and `running`), so all that is left to do here is to say so.
    """
    try:
        return main(argv)
    except KeyboardInterrupt:
        say("stopped (Ctrl+C)")
        return EXIT_CTRL_C


if __name__ == "__main__":
    sys.exit(cli())
