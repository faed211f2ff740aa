"""Private network namespaces for the SIP peer tests: loopback only, nothing leaves the box."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def unshare_command() -> list[str]:
    """``unshare -n`` (as root) or ``unshare -rn``, checked once here so a machine that
    cannot make a namespace fails with the fix instead of a peer's obscure socket error."""
    if shutil.which("unshare") is None:
        pytest.fail("util-linux `unshare` is needed to run SIP peer tests in a private netns")
    base = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
    probe = subprocess.run([*base, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.fail(
            f"cannot create a network namespace ({probe.stderr.strip()}): run as root, "
            "or enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)"
        )
    return base
