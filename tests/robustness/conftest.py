"""Robustness tests: hostile input, then the server must still answer OPTIONS
and complete a real SIPp call.  Real-peer tests run inside ``unshare -n``
exactly as the SIP tests do (the ``netns`` marker), reusing their plumbing."""

from __future__ import annotations

import sys
from pathlib import Path

SIP_TESTS = Path(__file__).resolve().parent.parent / "telephony" / "sip"
sys.path.insert(0, str(SIP_TESTS))

# The SIP tests' netns hook, registered here too (pytest collects hooks by name).
from tests.telephony.sip.conftest import pytest_pyfunc_call  # noqa: E402

__all__ = ["pytest_pyfunc_call"]
