"""The demo bank's data: customers, accounts, cards, transactions, SMS outbox.

The runtime database is built from ``bank/seed.sql`` the first time it is
needed, so the reviewable source of truth is text.  ``$VOICEBOT_BANK_DB``
points the actions server at another file (tests use a fresh one each run).

Runs inside the Rasa venv (Python 3.10), standard library only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
SEED_SQL = PROJECT_DIR / "bank" / "seed.sql"
DEFAULT_DB = PROJECT_DIR / "bank" / "demo_bank.sqlite3"

_create_lock = threading.Lock()


@dataclass(frozen=True)
class Customer:
    id: int
    full_name: str
    first_name: str
    phone: str


@dataclass(frozen=True)
class Account:
    id: int
    kind: str
    balance_cents: int


@dataclass(frozen=True)
class Card:
    id: int
    last4: str
    kind: str
    status: str


@dataclass(frozen=True)
class Transaction:
    posted_on: str
    description: str
    amount_cents: int


def db_path() -> Path:
    """The runtime database file (``$VOICEBOT_BANK_DB`` or the project default)."""
    return Path(os.environ.get("VOICEBOT_BANK_DB") or DEFAULT_DB)


def hash_pin(salt_hex: str, pin: str) -> str:
    """sha256(salt || pin) as hex; the only form a PIN is ever stored in."""
    return hashlib.sha256(bytes.fromhex(salt_hex) + pin.encode("ascii")).hexdigest()


def ensure_database(path: Path | None = None) -> Path:
    """Create the database from seed.sql unless it exists (atomic rename)."""
    path = path or db_path()
    with _create_lock:
        if path.exists():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        if tmp.exists():
            tmp.unlink()
        conn = sqlite3.connect(tmp)
        try:
            conn.executescript(SEED_SQL.read_text(encoding="utf-8"))
            conn.commit()
        finally:
            conn.close()
        os.replace(tmp, path)
    return path


@contextmanager
def connect() -> Iterator[sqlite3.Connection]:
    """A short-lived connection per query: commit on success, always close."""
    conn = sqlite3.connect(ensure_database(), timeout=5)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        with conn:
            yield conn
    finally:
        conn.close()


def normalise_phone(phone: str) -> str:
    """Keep a leading + and digits: callers' IDs arrive in many spellings."""
    phone = phone.strip()
    digits = "".join(ch for ch in phone if ch.isdigit())
    return ("+" + digits) if phone.startswith("+") else digits


def customer_by_phone(phone: str | None) -> Customer | None:
    if not phone:
        return None
    with connect() as conn:
        row = conn.execute(
            "SELECT id, full_name, first_name, phone FROM customers WHERE phone = ?",
            (normalise_phone(phone),),
        ).fetchone()
    return Customer(*row) if row else None


def check_pin(customer_id: int, pin: str) -> bool:
    """Compare in constant time; a malformed PIN is simply wrong."""
    with connect() as conn:
        row = conn.execute(
            "SELECT pin_salt, pin_hash FROM customers WHERE id = ?", (customer_id,)
        ).fetchone()
    if not row or not (pin.isdigit() and len(pin) == 4):
        return False
    return hmac.compare_digest(hash_pin(row[0], pin), row[1])


def accounts(customer_id: int) -> list[Account]:
    with connect() as conn:
        rows = conn.execute(
            "SELECT id, kind, balance_cents FROM accounts WHERE customer_id = ? ORDER BY id",
            (customer_id,),
        ).fetchall()
    return [Account(*r) for r in rows]


def recent_transactions(customer_id: int, limit: int = 3) -> list[Transaction]:
    with connect() as conn:
        rows = conn.execute(
            "SELECT t.posted_on, t.description, t.amount_cents FROM transactions t "
            "JOIN accounts a ON a.id = t.account_id WHERE a.customer_id = ? "
            "ORDER BY t.posted_on DESC, t.id DESC LIMIT ?",
            (customer_id, limit),
        ).fetchall()
    return [Transaction(*r) for r in rows]


def cards(customer_id: int) -> list[Card]:
    with connect() as conn:
        rows = conn.execute(
            "SELECT id, last4, kind, status FROM cards WHERE customer_id = ? ORDER BY id",
            (customer_id,),
        ).fetchall()
    return [Card(*r) for r in rows]


def block_card(customer_id: int, card_id: int, reason: str = "lost or stolen") -> bool:
    """Block one of this customer's cards; False if it was not theirs or not active."""
    with connect() as conn:
        cur = conn.execute(
            "UPDATE cards SET status = 'blocked', block_reason = ?, "
            "blocked_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') "
            "WHERE id = ? AND customer_id = ? AND status = 'active'",
            (reason, card_id, customer_id),
        )
        return cur.rowcount == 1


def queue_password_reset_sms(customer: Customer) -> None:
    """Record the reset link in sms_outbox; nothing is really sent."""
    token = secrets.token_urlsafe(16)
    body = (
        "Your bank: reset your online banking password with this link, valid for 30 "
        f"minutes: https://bank.example/reset/{token} . If you did not ask for this, "
        "call us."
    )
    with connect() as conn:
        conn.execute(
            "INSERT INTO sms_outbox (customer_id, phone, kind, body) VALUES (?, ?, ?, ?)",
            (customer.id, customer.phone, "password_reset", body),
        )


def reset_database(path: Path | None = None) -> Path:
    """Throw away the runtime database and build it again from seed.sql."""
    path = path or db_path()
    for leftover in (path, path.with_name(path.name + "-journal")):
        leftover.unlink(missing_ok=True)
    return ensure_database(path)


def _main(argv: list[str]) -> int:
    """``bank.py hash-pin NNNN`` prints a salt and hash for seed.sql;
    ``bank.py reset`` rebuilds the demo database (blocked cards, SMS outbox)."""
    if len(argv) == 2 and argv[0] == "hash-pin" and argv[1].isdigit() and len(argv[1]) == 4:
        salt = secrets.token_hex(16)
        print(f"pin_salt={salt}\npin_hash={hash_pin(salt, argv[1])}")
        return 0
    if argv == ["reset"]:
        print(f"rebuilt {reset_database()}")
        return 0
    print("usage: bank.py hash-pin NNNN | bank.py reset", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
