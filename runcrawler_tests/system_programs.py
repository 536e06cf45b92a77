"""What the tests that drive system programs (PostgreSQL, Chromium) share.

Those programs come from the system's packages, not from pip: `.ci/run`
installs them, a developer's machine may lack them. Such a test skips with
the command that installs what is missing, except on CI (`CI=true`), where a
skip would hide that the test never ran, so it fails instead. Every process
a test starts is stopped by process group, and checked gone.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def require(found: T | None, what: str, install: str) -> T:
    """`found`, else skip saying what to install (fail instead when CI=true)."""
    if found is None:
        message = f"{what} is not installed: `{install}` installs it (.ci/run does)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {message}", pytrace=False)
        pytest.skip(message)
    return found


def free_port() -> int:
    """A local TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check: Callable[[], T], timeout: float, what: str, every: float = 0.5) -> T:
    """Poll `check` until it returns a truthy value, or fail saying what never happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"after {timeout:.0f} s: {what}", pytrace=False)


def answers(url: str) -> bool:
    """Whether a local server answers `url` with 200 yet (any connection error: not yet)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_process_group(process: subprocess.Popen) -> None:
    """Kill the group `process` leads (started with start_new_session) and check it is gone.

    A server may ignore SIGTERM or leave children behind: SIGKILL to the group.
    """
    if group_alive(process.pid):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)
    wait_for(lambda: not group_alive(process.pid), 30, f"process group {process.pid} exited")
