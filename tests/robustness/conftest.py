"""Robustness tests: hostile input, then the server must still answer OPTIONS
and complete a real SIPp call.  Real-peer tests run inside ``unshare -n``
exactly as the SIP tests do (the ``netns`` marker), reusing their plumbing."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

SIP_TESTS = Path(__file__).resolve().parent.parent / "telephony" / "sip"
sys.path.insert(0, str(SIP_TESTS))

from tests.telephony.sip.conftest import IN_NETNS, _run_in_netns  # noqa: E402


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if pyfuncitem.get_closest_marker("netns") is None or os.environ.get(IN_NETNS):
        return None
    _run_in_netns(pyfuncitem)
    return True
