"""Debian's Chromium and its driver, for the dashboard's browser tests and screenshots.

Standard library only (tools/hitctl.py imports it before the environment exists). `ensure(environ, say)`
finds `chromium` and `chromedriver` (or the paths in HIT_TEST_CHROMIUM / HIT_TEST_CHROMEDRIVER), installs
Debian's `chromium` and `chromium-driver` with apt-get when they are missing and this run may install
(root, or CI), and returns the two variables the tests read. No browser is ever downloaded by the test
driver itself: Selenium is pointed at these two programs.

In CI a browser that cannot be had raises `Unavailable` (the run fails: the browser tests must not be
skipped there); elsewhere it says so loudly and the browser tests skip.

`ARGUMENTS` are the flags Chromium needs here: headless, as root (no sandbox), and quiet on the network
(no background connections, which a closed network refuses and which would show up as console errors).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

CHROMIUM_VARIABLE = "HIT_TEST_CHROMIUM"
DRIVER_VARIABLE = "HIT_TEST_CHROMEDRIVER"
PACKAGES = ("chromium", "chromium-driver")
CHROMIUM_NAMES = ("chromium", "chromium-browser")
DRIVER_NAMES = ("chromedriver",)
INSTALL_TIMEOUT_S = 1200
ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


class Unavailable(Exception):
    """No browser could be found or installed; in CI the test run fails with this message."""


@dataclass(frozen=True)
class Browser:
    chromium: str
    driver: str

    def environ(self) -> dict[str, str]:
        return {CHROMIUM_VARIABLE: self.chromium, DRIVER_VARIABLE: self.driver}


def _program(environ: Mapping[str, str], variable: str, names: tuple[str, ...]) -> str | None:
    chosen = environ.get(variable, "").strip()
    if chosen:
        return chosen if Path(chosen).is_file() else None
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def find(environ: Mapping[str, str]) -> Browser | None:
    """Both programs, from the environment's variables or the PATH; None when either is missing."""
    chromium = _program(environ, CHROMIUM_VARIABLE, CHROMIUM_NAMES)
    driver = _program(environ, DRIVER_VARIABLE, DRIVER_NAMES)
    return Browser(chromium, driver) if chromium and driver else None


def install_commands(*, is_root: bool) -> list[list[str]]:
    """apt-get update + install of Debian's packages; through `sudo -n` when not root (a CI runner with
    password-less sudo), which fails at once rather than asking for a password."""
    prefix = [] if is_root else ["sudo", "-n"]
    return [[*prefix, "apt-get", "update"], [*prefix, "apt-get", "install", "-y", *PACKAGES]]


def may_install(*, is_root: bool, ci: bool) -> bool:
    """Installing system packages is for root or CI only; a developer's machine is left alone."""
    return (is_root or ci) and shutil.which("apt-get") is not None


def install(say: Callable[[str], None], *, is_root: bool) -> None:
    say(f"Chromium for the browser tests not found: installing {' and '.join(PACKAGES)} (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in install_commands(is_root=is_root):
        try:
            code = subprocess.call(cmd, stdin=subprocess.DEVNULL, env=env, timeout=INSTALL_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Unavailable(f"`{' '.join(cmd)}` could not run: {exc}") from exc
        if code != 0:
            raise Unavailable(f"`{' '.join(cmd)}` failed (exit {code}, see above)")


def obtain(environ: Mapping[str, str], say: Callable[[str], None]) -> Browser:
    """Both programs, installed first when missing and this run may install; Unavailable if not."""
    found = find(environ)
    if found is not None:
        return found
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if not may_install(is_root=is_root, ci=bool(environ.get("CI"))):
        raise Unavailable("no chromium/chromedriver, and only root or CI may install packages")
    install(say, is_root=is_root)
    found = find(environ)
    if found is None:
        raise Unavailable("apt-get installed chromium, yet chromium or chromedriver is missing")
    return found


def ensure(environ: Mapping[str, str], say: Callable[[str], None]) -> dict[str, str]:
    """HIT_TEST_CHROMIUM and HIT_TEST_CHROMEDRIVER for the tests; empty (not in CI) when no browser."""
    try:
        found = obtain(environ, say)
    except Unavailable as exc:
        if environ.get("CI"):
            raise
        say("!" * 100)
        say(f"Chromium is not available, so the dashboard's browser tests are SKIPPED: {exc}")
        say(f"Install {' and '.join(PACKAGES)} or set {CHROMIUM_VARIABLE}; CI never skips them.")
        say("!" * 100)
        return {}
    say(f"browser tests use {found.chromium} with {found.driver}")
    return found.environ()
