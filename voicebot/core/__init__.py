"""The shared vocabulary below every other package: frames, the call record,
redaction, log lines and small asyncio helpers.  It imports nothing else from
voicebot, so every layer may import it."""
