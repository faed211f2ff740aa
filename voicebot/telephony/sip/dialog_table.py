"""The dialog table: which live call leg an in-dialog request or ACK belongs to.

The part Kamailio's ``dialog`` module and the session list of baresip's
``sipsess`` play: dialogs are keyed by Call-ID and both tags (§12), and the
table also tracks legs whose dialog does not exist yet (an INVITE we sent
that no 2xx has answered), so shutdown can end every one of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from sipmessage import Request

from voicebot.telephony.sip.dialog import Dialog
from voicebot.telephony.sip.message import header_tag
from voicebot.telephony.sip.transaction import ServerTransaction

DialogKey = tuple[str, str, str]


class DialogUser(Protocol):
    """What the table routes requests to: a call leg, seen from the dialog layer."""

    dialog: Dialog

    @property
    def ended(self) -> bool: ...

    def on_request(self, request: Request, tx: ServerTransaction) -> None: ...

    def on_ack(self, ack: Request) -> None: ...

    async def hangup(self, reason: str = ...) -> None: ...

    def abandon_unconfirmed(self) -> None: ...


class DialogTable:
    """Live legs, and the dialogs among them that in-dialog requests can reach."""

    def __init__(self) -> None:
        self._legs: set[DialogUser] = set()
        self._dialogs: dict[DialogKey, DialogUser] = {}

    def __iter__(self) -> Iterator[DialogUser]:
        return iter(list(self._legs))

    def track(self, leg: DialogUser) -> None:
        """A leg exists (maybe still without a dialog): shutdown must end it."""
        self._legs.add(leg)

    def register(self, leg: DialogUser) -> None:
        """The leg's dialog exists: in-dialog requests now reach it."""
        self._dialogs[leg.dialog.key] = leg

    def match(self, request: Request) -> DialogUser | None:
        """The leg whose dialog ``request`` was sent in (our tag is in its To)."""
        return self._dialogs.get(dialog_key(request))

    def forget(self, leg: DialogUser) -> None:
        """The leg ended: it no longer matches requests nor counts as live."""
        self._dialogs.pop(leg.dialog.key, None)
        self._legs.discard(leg)


def dialog_key(request: Request) -> DialogKey:
    """A received request's dialog ID as we store it: Call-ID, our tag, theirs."""
    return (request.call_id, header_tag(request.headers["To"]), header_tag(request.headers["From"]))
