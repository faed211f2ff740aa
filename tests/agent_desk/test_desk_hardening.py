"""Sign-in throttling, the Secure cookie behind TLS, session pruning and LIKE
wildcards: the real desk app on 127.0.0.1, a real SQLite store."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer
from desk_rig import TOKENS, DeskRig

from voicebot.agent_desk import create_desk_app
from voicebot.agent_desk.app import DESK
from voicebot.agent_desk.ratelimit import SignInLimiter


async def test_repeated_bad_sign_ins_earn_a_back_off(rig: DeskRig) -> None:
    statuses = [
        (await rig.client.post("/api/signin", json={"token": f"guess-{n}"})).status
        for n in range(8)
    ]
    assert statuses[:5] == [401] * 5 and 429 in statuses[5:]
    # While the back-off runs even the right token from this source waits.
    throttled = await rig.client.post("/api/signin", json={"token": TOKENS["alice"]})
    assert throttled.status == 429 and int(throttled.headers["Retry-After"]) >= 1
    # Bearer-token guessing on the API counts against the same limit.
    api = await rig.client.get("/api/me", headers={"Authorization": "Bearer guess"})
    assert api.status == 429


def test_limits_hold_per_source_and_per_token_prefix() -> None:
    now = [0.0]
    limiter = SignInLimiter(free=3, clock=lambda: now[0])
    for n in range(4):
        limiter.failed(f"10.0.0.{n}", "abcd-guess")  # one prefix, many sources
    assert limiter.retry_after("10.0.0.99", "abcd-other") > 0  # that prefix is slowed
    assert limiter.retry_after("10.0.0.99", "wxyz-other") == 0  # another prefix is not
    waits = [limiter.failed("10.0.0.1", "abcd") for _ in range(5)]
    assert waits == sorted(waits) and waits[-1] > waits[0]  # back-off doubles
    now[0] = 10_000.0
    assert limiter.retry_after("10.0.0.1", "abcd") == 0
    limiter.failed("10.9.9.9", "zzzz")  # pruning forgets the quiet keys
    assert set(limiter._by_key) == {"src:10.9.9.9", "prefix:zzzz"}


@pytest.mark.parametrize("secure", [False, True])
async def test_cookie_is_secure_behind_a_tls_proxy(store, queue, secure: bool) -> None:
    app = create_desk_app(store, queue, secure_cookie=secure)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        good = await client.post("/api/signin", json={"token": TOKENS["alice"]})
        assert good.status == 200
        assert ("Secure" in good.headers["Set-Cookie"]) is secure


async def test_expired_sessions_are_pruned(rig: DeskRig) -> None:
    sessions = rig.app[DESK].sessions
    sessions.ttl_s = -1.0  # every session is born expired
    for _ in range(3):
        assert (await rig.client.post("/api/signin", json={"token": TOKENS["bob"]})).status == 200
    assert len(sessions) == 1  # each sign-in pruned the expired ones before it


async def test_search_wildcards_are_literal(rig: DeskRig) -> None:
    from handoff_builders import make_package

    rig.store.save_handoff(make_package("CA_1").to_dict(), "no_agent", "2026-01-01T00:00:00+00:00")
    rig.store.save_handoff(make_package("CAx1").to_dict(), "no_agent", "2026-01-01T00:00:00+00:00")
    sam = rig.auth("sam")
    found = await (await rig.client.get("/api/calls?q=CA_1", headers=sam)).json()
    assert [c["call_id"] for c in found["calls"]] == ["CA_1"]
    everything = await (await rig.client.get("/api/calls?q=%25", headers=sam)).json()
    assert everything["calls"] == []


def test_desk_tokens_go_to_a_private_file_not_stdout(tmp_path, capsys) -> None:
    import stat

    from voicebot.cli import announce_tokens
    from voicebot.config import Config

    config = Config()
    config.storage.database = str(tmp_path / "var" / "calls.sqlite3")
    announce_tokens({"alice": "secret-token-1"}, config, print_them=False)
    out = capsys.readouterr().out
    assert "secret-token-1" not in out
    path = tmp_path / "var" / "desk-tokens"
    assert str(path) in out
    assert path.read_text() == "alice=secret-token-1\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    announce_tokens({"alice": "secret-token-1"}, config, print_them=True)
    assert "secret-token-1" in capsys.readouterr().out


def test_a_spray_from_100k_sources_keeps_the_table_bounded() -> None:
    """Each address and token prefix gets a count; a table that never shrank
    within the window would grow with every address an attacker owns."""
    limiter = SignInLimiter(max_keys=2_000, clock=lambda: 5.0)
    for n in range(100_000):
        limiter.failed(f"2001:db8::{n:x}", f"{n:04x}-guess")
        assert len(limiter) <= 2_000
    assert limiter.retry_after(f"2001:db8::{99_999:x}", "zzzz") == 0  # one failure: no wait yet
    assert "src:2001:db8::1869f" in limiter._by_key  # the newest are the ones kept
