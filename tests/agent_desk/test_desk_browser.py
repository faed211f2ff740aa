"""The desk in a real headless Chromium (Debian's, driven by Playwright).

Sign in with a token → a transfer is pushed → the card shows the reason, the
summary and the transcript (untrusted text stays text) → Accept → the queue's
ring resolves "answered".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from desk_rig import TOKENS
from handoff_builders import fraud_decision, fraud_record
from playwright.async_api import Browser, async_playwright, expect

from voicebot.agent_desk import mount_desk
from voicebot.agent_desk.app import DESK
from voicebot.handoff import Answered, HandoffPackage, Ringing, TransferQueue
from voicebot.storage.call_store import SqliteCallStore

CHROMIUM = "/usr/bin/chromium"
# Without these Chromium keeps trying to reach Google's hosts on this
# machine's closed network (see .library/env/machines/python.md).
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path("/tmp/desk.png")
SCREENSHOT_AFTER = Path("/tmp/desk-connected.png")
XSS = "<img src=x onerror=\"document.title='pwned'\"> and </script><script>alert(1)</script>"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def served(
    store: SqliteCallStore, queue: TransferQueue
) -> AsyncIterator[tuple[str, web.Application]]:
    """The desk mounted under /desk of a bigger app, as ``voicebot serve`` does."""
    app = web.Application()
    desk = mount_desk(app, store, queue)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", desk
    await runner.cleanup()


def tricky_package() -> HandoffPackage:
    record = fraud_record("call-77")
    turn = record.add_turn(
        XSS,
        "speech",
        intent="complaint",
        confidence=0.71,
        bot_text="<b>not bold</b> — I'm transferring you now.",
    )
    turn.offset_s = 16.0
    return HandoffPackage.from_record(record, fraud_decision())


async def test_agent_signs_in_sees_the_transfer_and_accepts(
    browser: Browser, served: tuple[str, web.Application], queue: TransferQueue
) -> None:
    base, desk = served
    # Left by an earlier process: a caller who asked to be called back.
    queue.store.save_handoff(
        tricky_package().to_dict() | {"call_id": "call-earlier"},
        "callback",
        "2026-01-01T09:00:00.000+00:00",
    )
    queue.store.save_callback("call-earlier", "+15550123", "2026-01-01T09:00:05.000+00:00")
    page = await browser.new_page(viewport={"width": 1280, "height": 1100})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))

    await page.goto(f"{base}/desk")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await expect(page.locator("#desk")).to_be_hidden()  # nothing readable signed out
    await page.get_by_label("Agent token").fill("wrong-token-0123456789")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("That token was not recognised.")
    await page.get_by_label("Agent token").fill(TOKENS["alice"])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#me-name")).to_have_text("alice")
    await desk[DESK].hub.wait_connected("alice")
    await expect(page.locator("#followup-list")).to_contain_text("Call back +15550123")

    rang: asyncio.Future[Ringing] = asyncio.get_running_loop().create_future()
    package = tricky_package()
    offer = asyncio.create_task(
        queue.offer(
            package,
            on_step=lambda s: isinstance(s, Ringing) and not rang.done() and rang.set_result(s),
        )
    )
    assert (await asyncio.wait_for(rang, 5)).agent == "alice"

    card = page.locator("article.card")
    await expect(card).to_be_visible()
    await expect(card.locator(".badge")).to_have_text("Complex request")
    await expect(card.locator(".summary")).to_have_text(package.summary)
    await expect(card.locator(".verified")).to_contain_text("✓ Verified")
    transcript = card.locator(".transcript")
    await expect(transcript).to_contain_text("there's a charge I don't recognise on my card")
    await expect(transcript).to_contain_text("Hello, you're speaking with the automated assistant.")
    await expect(transcript).to_contain_text(XSS)  # shown as text...
    assert await transcript.locator("img, script, b").count() == 0  # ...never as markup
    assert await card.locator("svg polyline").count() == 1
    await expect(card.locator("svg")).to_have_attribute(
        "aria-label", "Frustration over 3 turns, peak 0.12 of 1"
    )
    await page.screenshot(path=str(SCREENSHOT), full_page=True)

    await card.get_by_role("button", name="Accept").click()
    result = await asyncio.wait_for(offer, 5)
    assert isinstance(result, Answered) and result.agent.name == "alice"
    await expect(card.locator(".card-state")).to_have_text("Connected. The caller is with you.")
    await expect(page.locator("#me-status")).to_have_text("On a call")

    await page.get_by_label("Search calls").fill("recognise")
    await page.get_by_role("button", name="Search").click()
    await expect(page.locator("#history-list")).to_contain_text("call-77")
    await page.locator("#history-list .item-open").first.click()
    detail = page.locator("#detail")
    await expect(detail).to_contain_text("Rang: alice (answered)")
    await expect(detail.locator(".transcript")).to_contain_text("there's a charge I don't")
    assert "null" not in await detail.inner_text()

    await page.screenshot(path=str(SCREENSHOT_AFTER), full_page=True)
    assert await page.title() == "Agent desk · voicebot"
    assert not dialogs and not errors
