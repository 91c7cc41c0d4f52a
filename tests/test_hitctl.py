"""The bootstrap behind run.sh / run.ps1 (stdlib only, so it is imported by path)."""

import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_hitctl():
    sys.path.insert(0, str(ROOT / "tools"))
    spec = importlib.util.spec_from_file_location("hitctl", ROOT / "tools" / "hitctl.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pytest_outcome_treats_no_tests_collected_as_failure():
    hitctl = load_hitctl()
    ok, message = hitctl.pytest_outcome(5)
    assert not ok
    assert "no tests" in message


def test_pytest_outcome_passes_only_on_zero():
    hitctl = load_hitctl()
    assert hitctl.pytest_outcome(0)[0]
    assert not hitctl.pytest_outcome(1)[0]


def test_unknown_command_prints_usage_and_fails(capsys):
    hitctl = load_hitctl()
    assert hitctl.main(["frobnicate"]) == 2
    assert "Commands:" in capsys.readouterr().err


def test_shell_and_powershell_wrappers_call_the_same_entry_point():
    for script in ("run.sh", "run.ps1"):
        assert "tools/hitctl.py" in (ROOT / script).read_text()
    for script in ("setup.sh", "setup.ps1"):
        assert "setup" in (ROOT / script).read_text()


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./run.sh test" in ci
    assert "./run.sh test" in (ROOT / "README.md").read_text()


def test_readme_settings_table_names_every_setting_of_both_services():
    readme = (ROOT / "README.md").read_text()
    for example in ("trading-server/.env.example", "discord-bot/.env.example"):
        keys = [
            line.split("=", 1)[0]
            for line in (ROOT / example).read_text().splitlines()
            if line and not line.startswith("#") and "=" in line
        ]
        assert keys
        missing = [key for key in keys if f"`{key}`" not in readme]
        assert not missing, f"README.md settings table lacks {missing} from {example}"


# The child says it is up (a file) before it is stopped: a SIGINT that lands while Python is still
# starting ends it with a traceback and exit status 1 (seen on a loaded machine), not by the signal.
CHILD_STOPPED_BY = """
import os, sys, time
sys.path.insert(0, {tools!r})
import hitctl, launcher
hitctl.let_ctrl_c_through()
child = "import pathlib, time; pathlib.Path('up').touch(); time.sleep(60)"
service = launcher.Service("child", [sys.executable, "-c", child], {{}}, {cwd!r})
service.start()
while not os.path.exists(os.path.join({cwd!r}, "up")):
    time.sleep(0.01)
service.stop()
print(service.exit_code())
"""


@pytest.mark.skipif(os.name == "nt", reason="SIGINT ignored by a POSIX shell's background commands")
def test_ctrl_c_reaches_the_services_of_a_launcher_started_with_sigint_ignored(tmp_path):
    """`nohup ./run.sh demo &` (or a CI runner) starts us with SIGINT ignored: the services we start must
    still stop on the launcher's polite SIGINT, not wait for the grace and be terminated."""
    code = CHILD_STOPPED_BY.format(tools=str(ROOT / "tools"), cwd=str(tmp_path))
    done = subprocess.run(
        ["/bin/sh", "-c", 'trap "" INT; exec "$0" -c "$1"', sys.executable, code],
        capture_output=True, text=True, timeout=60, check=True,
    )
    assert int(done.stdout.strip()) == -signal.SIGINT, done  # not -SIGTERM after STOP_GRACE_S


@pytest.mark.parametrize(("given", "expected"), [
    ([], ["-n", "auto", "--dist", "worksteal"]),
    (["tests/test_x.py", "-k", "y"], ["-n", "auto", "--dist", "worksteal", "tests/test_x.py", "-k", "y"]),
    (["-n", "3"], ["-n", "3"]),
    (["-n0", "-x"], ["-n0", "-x"]),
    (["--numprocesses=4"], ["--numprocesses=4"]),
    (["-p", "no:xdist"], ["-p", "no:xdist"]),
])
def test_the_suite_runs_on_a_worker_per_core_unless_the_arguments_choose(given, expected):
    assert load_hitctl().parallel(given) == expected
