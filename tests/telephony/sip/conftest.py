"""SIP test plumbing: run real-peer tests inside a private network namespace.

Tests marked ``@pytest.mark.netns`` are re-run by this hook in a pytest
subprocess under ``unshare -n`` (``unshare -rn`` when not root), where only a
fresh loopback exists: baresip binds RTP on every interface, fixed ports
(5060, 5070, 5090…) never clash with other tests or services, and nothing
can leak onto a real network.  The outer test passes or fails with the inner
one.  There is no skip: without namespaces or the peers, the tests fail with
the fix, so CI cannot go green without them.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.netns_tools import unshare_command

IN_NETNS = "VOICEBOT_IN_NETNS"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "netns: runs in a pytest subprocess inside a private network namespace"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if pyfuncitem.get_closest_marker("netns") is None or os.environ.get(IN_NETNS):
        return None
    _run_in_netns(pyfuncitem)
    return True


def _run_in_netns(item: pytest.Function) -> None:
    script = 'ip link set lo up && exec "$@"'
    pytest_args = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-rA"]
    command = [*unshare_command(), "sh", "-c", script, "sh", *pytest_args, item.nodeid]
    env = {**os.environ, IN_NETNS: "1"}
    result = subprocess.run(
        command,
        cwd=item.config.rootpath,
        env=env,
        capture_output=True,
        text=True,
        timeout=_timeout(item),
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-12000:]
        pytest.fail(f"in netns: {item.nodeid} failed (rc={result.returncode})\n{output}", False)


def _timeout(item: pytest.Function) -> float:
    marker = item.get_closest_marker("timeout")
    return float(marker.args[0]) if marker and marker.args else 240.0
