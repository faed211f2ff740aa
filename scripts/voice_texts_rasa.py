#!/usr/bin/env python
"""Print, as JSON, every reply the bank's custom actions can build, for each demo customer.

Runs in the Rasa venv (the actions need rasa_sdk), on a throw-away copy of the
demo bank, so ``scripts/bench_voice`` can measure the replies with real amounts,
dates and card endings rather than hand-written look-alikes.  Usage::

    .venv-rasa/bin/python scripts/voice_texts_rasa.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        os.environ["VOICEBOT_BANK_DB"] = str(Path(folder) / "bank.sqlite3")
        sys.path.insert(0, str(PROJECT / "rasa_project"))
        from actions import actions, bank
        from rasa_sdk.executor import CollectingDispatcher

        texts: list[str] = []
        with bank.connect() as conn:
            phones = [row[0] for row in conn.execute("SELECT phone FROM customers ORDER BY id")]
        for phone in phones:
            customer = bank.customer_by_phone(phone)
            assert customer is not None
            for request in (*actions.ACCOUNT_REQUESTS, None):
                dispatcher = CollectingDispatcher()
                actions.fulfil(request, customer, dispatcher)
                texts += [m["text"] for m in dispatcher.messages if m.get("text")]
            cards = bank.cards(customer.id)
            if cards:
                texts.append("Done. " + actions._cards_blocked(cards, "now"))
    print(json.dumps(list(dict.fromkeys(texts)), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
