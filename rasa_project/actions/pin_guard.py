"""PIN guessing across calls: a per-customer failure count with back-off and lockout.

The three-attempt limit of ``pin_form`` lasts one call, and a caller ID is
easy to spoof, so without this anyone could keep calling and try all 10,000
PINs in a few hours.  Failures are kept in the bank's database beside the PIN
hash (the bank owns the lock, as a real core system would):

* every ``ATTEMPTS_PER_WINDOW`` consecutive failures lock the customer out of
  PIN checks for ``BASE_LOCK_S``, doubling each time (15 min, 30 min, …);
* after ``HARD_LOCK_FAILURES`` consecutive failures the lock stays until staff
  clear it (:func:`unlock`): at most 9 guesses in all;
* a correct PIN clears the count.  While locked, a PIN is not even checked, so
  a locked-out guesser learns nothing.

Runs inside the Rasa venv (Python 3.10), standard library only.
"""

from __future__ import annotations

import logging
import time
from enum import Enum

from . import bank

logger = logging.getLogger(__name__)

ATTEMPTS_PER_WINDOW = 3
BASE_LOCK_S = 15 * 60.0
HARD_LOCK_FAILURES = 9
FOREVER = float("inf")

SCHEMA = """CREATE TABLE IF NOT EXISTS pin_guard (
    customer_id  INTEGER PRIMARY KEY REFERENCES customers(id),
    failures     INTEGER NOT NULL,
    locked_until REAL NOT NULL
)"""


class Verdict(Enum):
    RIGHT = "right"
    WRONG = "wrong"
    LOCKED = "locked"


def check(customer_id: int, pin: str, now: float | None = None) -> Verdict:
    """Check a PIN unless the customer is locked out; count the outcome."""
    now = time.time() if now is None else now
    with bank.connect() as conn:
        conn.execute(SCHEMA)
        conn.execute("BEGIN IMMEDIATE")  # count and decide atomically (two calls at once)
        row = conn.execute(
            "SELECT failures, locked_until FROM pin_guard WHERE customer_id = ?", (customer_id,)
        ).fetchone()
        failures, locked_until = row or (0, 0.0)
        if locked_until > now:
            logger.warning("event=pin_locked_attempt customer=%s", customer_id)
            return Verdict.LOCKED
        if bank.check_pin(customer_id, pin):
            conn.execute("DELETE FROM pin_guard WHERE customer_id = ?", (customer_id,))
            return Verdict.RIGHT
        failures += 1
        locked_until = lock_until(failures, now)
        conn.execute(
            "INSERT OR REPLACE INTO pin_guard VALUES (?, ?, ?)",
            (customer_id, failures, min(locked_until, 1e300)),
        )
    logger.warning(
        "event=pin_failure customer=%s failures=%d locked_for_s=%s",
        customer_id, failures, "forever" if locked_until == FOREVER else round(locked_until - now),
    )  # fmt: skip
    return Verdict.WRONG


def lock_until(failures: int, now: float) -> float:
    """When the lock earned by ``failures`` consecutive failures ends (``now``: none)."""
    if failures >= HARD_LOCK_FAILURES:
        return FOREVER
    if failures % ATTEMPTS_PER_WINDOW:
        return now
    return now + BASE_LOCK_S * 2 ** (failures // ATTEMPTS_PER_WINDOW - 1)


def locked(customer_id: int, now: float | None = None) -> bool:
    now = time.time() if now is None else now
    with bank.connect() as conn:
        conn.execute(SCHEMA)
        row = conn.execute(
            "SELECT locked_until FROM pin_guard WHERE customer_id = ?", (customer_id,)
        ).fetchone()
    return bool(row) and row[0] > now


def unlock(customer_id: int) -> None:
    """Staff cleared the customer's identity: PIN checks may resume."""
    with bank.connect() as conn:
        conn.execute(SCHEMA)
        conn.execute("DELETE FROM pin_guard WHERE customer_id = ?", (customer_id,))
