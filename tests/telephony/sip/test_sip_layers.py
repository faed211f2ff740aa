"""The SIP package's layers import only downward, and the user agent fits its legs' port.

Every import statement counts — top-level, inside a function, or under
``TYPE_CHECKING`` — because each of those is how the old
server → call → bridge → outbound → leg → server cycle was held together.
docs/SIP.md explains the layers.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import voicebot.telephony.rtp
import voicebot.telephony.sip
from voicebot.telephony.sip.agent import UserAgent
from voicebot.telephony.sip.config import SipConfig
from voicebot.telephony.sip.server import SipServer

SIP = Path(voicebot.telephony.sip.__file__).parent
RTP = Path(voicebot.telephony.rtp.__file__).parent
PREFIX = "voicebot.telephony.sip."

# Bottom first.  A module may import modules of lower rows only (not its own
# row, not above).  Every module of the package must be listed, so a new one
# has to be given its place.
LAYERS: list[set[str]] = [
    {"message", "sdp", "config", "refer", "flood"},  # vocabulary: messages, SDP, settings
    {"transport"},  # the UDP socket
    {"transaction"},  # §17 state machines
    {"transaction_layer"},  # their tables
    {"dialog"},  # §12 dialog state
    {"dialog_table"},  # Call-ID and tags → leg
    {"agent"},  # the UserAgent port
    {"leg"},
    {"outbound"},
    {"bridge"},
    {"call"},
    {"server"},  # the user agent core
    {"__init__"},
]


def imported_modules(path: Path, package: str) -> set[str]:
    """Every ``voicebot...`` name ``path`` imports, wherever the statement sits.

    ``from a.b import c`` yields ``a.b`` and ``a.b.c`` (``c`` may be a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("voicebot.")}


def sip_imports(name: str) -> set[str]:
    """The sip modules ``name`` imports (short names; the package itself is ``__init__``)."""
    names = imported_modules(SIP / f"{name}.py", "voicebot.telephony.sip")
    short = {n.removeprefix(PREFIX).split(".")[0] for n in names if n.startswith(PREFIX)}
    return {m if (SIP / f"{m}.py").exists() else "__init__" for m in short}


def rank(name: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if name in layer)


def test_every_sip_module_has_a_layer() -> None:
    modules = {p.stem for p in SIP.glob("*.py")}
    listed = set().union(*LAYERS)
    assert modules - listed == set(), "give each new sip module a row in LAYERS"
    assert listed - modules == set(), "LAYERS names a module that no longer exists"


def test_sip_modules_import_only_downward() -> None:
    upward = {
        (name, target)
        for name in set().union(*LAYERS)
        for target in sip_imports(name)
        if rank(target) >= rank(name)
    }
    assert upward == set()


def test_the_layer_walk_sees_a_hidden_upward_import(tmp_path: Path) -> None:
    """The walk itself: a function-level or TYPE_CHECKING import is found."""
    module = tmp_path / "leg.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from voicebot.telephony.sip.server import SipServer\n"
        "def f():\n"
        "    from voicebot.telephony.sip import bridge\n"
        "    from . import call\n"
    )
    names = imported_modules(module, "voicebot.telephony.sip")
    assert {
        "voicebot.telephony.sip.server",
        "voicebot.telephony.sip.bridge",
        "voicebot.telephony.sip.call",
    } <= names


def test_legs_know_the_user_agent_only_through_its_port() -> None:
    for name in ("leg", "outbound", "bridge", "call"):
        assert "server" not in sip_imports(name)
        assert "agent" in sip_imports(name) or "leg" in sip_imports(name)


def test_rtp_knows_nothing_of_sip() -> None:
    for path in RTP.glob("*.py"):
        names = imported_modules(path, "voicebot.telephony.rtp")
        assert not any(n.startswith("voicebot.telephony.sip") for n in names), path.name


def test_sip_server_provides_every_member_of_the_user_agent_port() -> None:
    async def handler(channel: object) -> None: ...

    server = SipServer(SipConfig(listen_port=0), handler)  # nothing bound until start()
    for name, member in vars(UserAgent).items():
        if name.startswith("_") or not callable(member):
            continue
        expected = list(inspect.signature(member).parameters)[1:]  # without self
        assert list(inspect.signature(getattr(server, name)).parameters) == expected, name
    attributes = set(inspect.get_annotations(UserAgent))
    assert attributes == {"config", "logger", "timers", "codecs"}
    assert all(hasattr(server, name) for name in attributes)
    assert server.codecs == ("PCMU", "PCMA")
