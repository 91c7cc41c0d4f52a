"""The bootstrap behind run.sh / run.ps1 (stdlib only, so it is imported by path)."""

import importlib.util
import sys
from pathlib import Path

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
