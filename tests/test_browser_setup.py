"""The Chromium that `./run.sh test` finds or installs for the browser tests (tools/browser.py)."""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_browser():
    spec = importlib.util.spec_from_file_location("hit_tools_browser_setup", ROOT / "tools" / "browser.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


br = load_browser()


def programs(directory: Path, *names: str) -> Path:
    """Executable files with these names in `directory` (what `shutil.which` finds on a PATH)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        program = directory / name
        program.write_text("#!/bin/sh\n")
        program.chmod(0o755)
    return directory


def test_browser_found_on_the_path_and_given_to_the_tests_as_two_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(programs(tmp_path / "bin", "chromium", "chromedriver")))
    found = br.find({})
    assert found == br.Browser(str(tmp_path / "bin" / "chromium"), str(tmp_path / "bin" / "chromedriver"))
    assert found.environ() == {br.CHROMIUM_VARIABLE: found.chromium, br.DRIVER_VARIABLE: found.driver}


def test_browser_paths_in_the_environment_win_and_must_exist(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(programs(tmp_path / "bin", "chromium", "chromedriver")))
    mine = programs(tmp_path / "mine", "chrome", "driver")
    chosen = {br.CHROMIUM_VARIABLE: str(mine / "chrome"), br.DRIVER_VARIABLE: str(mine / "driver")}
    assert br.find(chosen) == br.Browser(str(mine / "chrome"), str(mine / "driver"))
    assert br.find({**chosen, br.DRIVER_VARIABLE: str(mine / "missing")}) is None


def test_browser_without_its_driver_is_not_found(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(programs(tmp_path / "bin", "chromium")))
    assert br.find({}) is None


def test_browser_install_is_debians_chromium_and_driver_through_sudo_unless_root():
    as_root = br.install_commands(is_root=True)
    assert as_root == [
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "chromium", "chromium-driver"],
    ]
    assert all(cmd[:2] == ["sudo", "-n"] for cmd in br.install_commands(is_root=False))
    assert not br.may_install(is_root=False, ci=False)


def test_browser_missing_is_installed_then_found(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    monkeypatch.setenv("PATH", str(programs(bin_dir)))
    monkeypatch.setattr(br, "may_install", lambda **kw: True)
    installs = []

    def install(say, *, is_root):
        installs.append(is_root)
        programs(bin_dir, "chromium", "chromedriver")

    monkeypatch.setattr(br, "install", install)
    said = []
    assert br.ensure({}, said.append) == {
        br.CHROMIUM_VARIABLE: str(bin_dir / "chromium"),
        br.DRIVER_VARIABLE: str(bin_dir / "chromedriver"),
    }
    assert len(installs) == 1 and "chromium" in said[-1]


def test_browser_missing_in_ci_is_a_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(programs(tmp_path / "bin")))
    monkeypatch.setattr(br, "may_install", lambda **kw: False)
    with pytest.raises(br.Unavailable, match="may install"):
        br.ensure({"CI": "true"}, print)


def test_browser_install_that_fails_in_ci_is_a_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(programs(tmp_path / "bin")))
    monkeypatch.setattr(br, "may_install", lambda **kw: True)
    monkeypatch.setattr(br, "install_commands", lambda **kw: [[sys.executable, "-c", "raise SystemExit(3)"]])
    with pytest.raises(br.Unavailable, match="failed \\(exit 3"):
        br.ensure({"CI": "true"}, print)


def test_browser_missing_on_a_developer_machine_is_a_loud_skip(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(programs(tmp_path / "bin")))
    monkeypatch.setattr(br, "may_install", lambda **kw: False)
    said = []
    assert br.ensure({}, said.append) == {}
    assert any("SKIPPED" in line for line in said)


def test_browser_arguments_keep_chromium_headless_and_off_the_network():
    for flag in ("--headless=new", "--no-sandbox", "--disable-background-networking", "--disable-sync"):
        assert flag in br.ARGUMENTS
    assert not any(flag.startswith("--user-data-dir") for flag in br.ARGUMENTS)  # a new one per session
    assert os.sep not in "".join(br.ARGUMENTS)
