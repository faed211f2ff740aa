"""Start-up and shutdown of the per-process services all calls share."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from voicebot.config import Config
from voicebot.session.services import Services
from voicebot.storage import retention

if TYPE_CHECKING:
    from voicebot.handoff import Dialer

log = logging.getLogger("voicebot.runtime")


def fixed_prompts(config: Config) -> list[str]:
    """Texts every call may need at once; synthesised at start-up."""
    s = config.session
    return [s.disclosure, s.silence_prompt, s.silence_goodbye, s.rasa_error_apology]


@asynccontextmanager
async def open_services(
    config: Config,
    *,
    database: str | Path | None = None,
    dialer: Dialer | None = None,
    bank_db: Path | None = None,
) -> AsyncIterator[Services]:
    """Load the model, the voice and the VAD, connect to (or start) Rasa.

    ``dialer`` rings agents for transfers (SIP REFER/bridge in ``serve``, a
    simulated agent in ``simulate``); None rings the agent desk only.
    ``bank_db`` gives a managed Rasa its own demo bank (tests block cards).
    """
    from voicebot.audio.vad import SileroVad
    from voicebot.dialogue.rasa_server import DialogueHost
    from voicebot.dialogue.responses import fixed_texts
    from voicebot.handoff import TransferQueue
    from voicebot.speech.stt import Transcriber
    from voicebot.speech.tts import Synthesizer
    from voicebot.speech.vocabulary import domain_prompt
    from voicebot.storage import is_postgres_url, open_store

    started = time.perf_counter()
    project = config.dialogue.project_path()
    prompt = domain_prompt(project) if config.speech.use_domain_prompt else None
    transcriber = Transcriber(config.speech, prompt=prompt)
    synthesizer = Synthesizer(config.tts)
    await synthesizer.preload(fixed_prompts(config))
    target = database or config.storage.url or config.storage.path()
    store = open_store(target, instance=config.cluster.instance or None)
    retention.start_up(store, config.storage.retention_days)
    shared = is_postgres_url(target)  # a cluster's store: claims, leases, events
    queue = TransferQueue(store, config.handoff, dialer, claims=store if shared else None)
    # Every other fixed reply renders in the background (Piper: about a minute of
    # one core; calls are served meanwhile, a sentence at most behind it).
    warming = asyncio.create_task(synthesizer.warm(fixed_texts(project)))
    try:
        managed: dict[str, Path] = {"project_dir": project}
        if bank_db:
            managed["bank_db"] = bank_db
        async with AsyncExitStack() as stack:
            if shared:
                from voicebot.cluster.node import ClusterNode

                await stack.enter_async_context(ClusterNode(store, queue))
            host = await stack.enter_async_context(DialogueHost(config.dialogue, **managed))
            assert host.client is not None
            log.info("event=services_ready seconds=%.2f", time.perf_counter() - started)
            yield Services(
                config=config,
                transcriber=transcriber,
                synthesizer=synthesizer,
                dialogue=host.client,
                dialogue_host=host,
                vad=SileroVad(),
                store=store,
                queue=queue,
            )
    finally:
        warming.cancel()
        await synthesizer.close()
        transcriber.close()
        store.close()
