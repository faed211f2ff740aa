"""``voicebot talk``: a call over this computer's microphone and speaker.

The sound card is just another transport: it captures at the device's own
rate, converts to the 20 ms 8 kHz frames every call uses (so a developer hears
and is heard exactly as a phone caller would be), and plays the bot's replies.

``sounddevice`` is imported lazily, inside functions: on Linux it needs the
PortAudio shared library, servers and CI have no sound card, and neither may
stop ``voicebot serve`` or the tests from importing this module.

Use headphones: a speaker that the microphone hears makes the bot barge in
on itself (or pass ``half_duplex=True`` and give up barge-in).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import threading
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import soxr

from voicebot.audio.gain import GainStage
from voicebot.audio.resample import resample
from voicebot.core.frames import (
    FRAME_MS,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    AudioFrame,
    DtmfFrame,
    HangupFrame,
    InputFrame,
)
from voicebot.telephony.channel import inbox_frames

PORTAUDIO_HINT = (
    "install the PortAudio library: apt-get install libportaudio2 (macOS: brew install portaudio)"
)
NO_DEVICE_HINT = (
    "plug in a headset, or check `python -m sounddevice`; without a sound card, "
    "`voicebot simulate` plays WAV files through the same call session"
)


class LocalAudioError(RuntimeError):
    """The microphone/speaker cannot be used; the message says how to fix it."""


def import_sounddevice() -> ModuleType:
    """Import sounddevice now, turning a missing PortAudio into a how-to-fix message."""
    try:
        return importlib.import_module("sounddevice")
    except OSError as exc:  # sounddevice raises OSError("PortAudio library not found")
        raise LocalAudioError(f"PortAudio is missing ({exc}): {PORTAUDIO_HINT}") from exc
    except ImportError as exc:
        raise LocalAudioError(
            f"the sounddevice package is missing ({exc}): pip install sounddevice"
        ) from exc


@dataclass(frozen=True, slots=True)
class AudioDevices:
    """The devices a local call will use, at their native rates."""

    input_index: int
    input_name: str
    input_rate: int
    output_index: int
    output_name: str
    output_rate: int


def _device(sd: ModuleType, kind: str, wanted: int | str | None) -> dict[str, Any]:
    role = "microphone (input)" if kind == "input" else "speaker (output)"
    try:
        info = sd.query_devices(wanted, kind=kind)
    except (sd.PortAudioError, ValueError) as exc:
        which = f"{wanted!r}" if wanted is not None else "default"
        raise LocalAudioError(f"no {role} device ({which}: {exc}): {NO_DEVICE_HINT}") from exc
    if int(info.get(f"max_{kind}_channels", 0)) < 1:
        name = info.get("name")
        raise LocalAudioError(f"device {name!r} has no {kind} channels: {NO_DEVICE_HINT}")
    return dict(info)


def find_devices(
    input_device: int | str | None = None,
    output_device: int | str | None = None,
    sd: ModuleType | None = None,
) -> AudioDevices:
    """The microphone and speaker to use, or a :class:`LocalAudioError` saying why not.

    ``voicebot talk`` calls this before loading any model, so a machine
    without a sound card fails in a second with a useful message.
    """
    sd = sd or import_sounddevice()
    try:
        devices = sd.query_devices()
    except sd.PortAudioError as exc:
        raise LocalAudioError(f"PortAudio cannot list audio devices ({exc})") from exc
    if len(devices) == 0:
        raise LocalAudioError(f"no audio devices found (no sound card?): {NO_DEVICE_HINT}")
    mic = _device(sd, "input", input_device)
    speaker = _device(sd, "output", output_device)
    return AudioDevices(
        input_index=int(mic.get("index", -1)),
        input_name=str(mic.get("name", "?")),
        input_rate=int(mic["default_samplerate"]),
        output_index=int(speaker.get("index", -1)),
        output_name=str(speaker.get("name", "?")),
        output_rate=int(speaker["default_samplerate"]),
    )


# ----------------------------------------------------------------- conversion


def to_mono_int16(block: np.ndarray) -> np.ndarray:
    """A device block (frames × channels, int16 or float) as mono int16."""
    data = np.asarray(block)
    if data.ndim == 2:
        data = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if data.dtype.kind == "f":
        data = np.clip(np.rint(data * 32767.0), -32768, 32767)
    return np.clip(data, -32768, 32767).astype(np.int16)


class MicrophoneFrames:
    """Device-rate capture blocks → 20 ms 8 kHz int16 frames.

    Resampling is *streaming* (soxr keeps filter state between blocks): the
    one-shot ``resample()`` would click at every 20 ms block edge.  soxr's
    low-quality preset is plenty for the telephone band and keeps the added
    delay near 40 ms (its high-quality preset buffers ~150 ms).
    """

    def __init__(self, device_rate: int) -> None:
        self.device_rate = device_rate
        self._stream = (
            soxr.ResampleStream(device_rate, SAMPLE_RATE, 1, dtype="int16", quality="LQ")
            if device_rate != SAMPLE_RATE
            else None
        )
        self._pending = np.zeros(0, dtype=np.int16)

    def push(self, block: np.ndarray) -> list[np.ndarray]:
        mono = to_mono_int16(block)
        pcm = self._stream.resample_chunk(mono) if self._stream is not None else mono
        return self._cut(pcm)

    def flush(self) -> list[np.ndarray]:
        """Whatever the resampler still holds, the last frame zero-padded."""
        tail = np.zeros(0, np.int16)
        if self._stream is not None:
            tail = self._stream.resample_chunk(tail, last=True)
        frames = self._cut(tail)
        if len(self._pending):
            frames.append(np.pad(self._pending, (0, FRAME_SAMPLES - len(self._pending))))
            self._pending = np.zeros(0, dtype=np.int16)
        return frames

    def _cut(self, pcm: np.ndarray) -> list[np.ndarray]:
        data = np.concatenate([self._pending, pcm.astype(np.int16, copy=False)])
        whole = len(data) - len(data) % FRAME_SAMPLES
        self._pending = data[whole:].copy()
        return list(data[:whole].reshape(-1, FRAME_SAMPLES))


class SpeakerBuffer:
    """The bot's queued audio at the device rate, pulled by the audio thread.

    ``push``/``clear`` run on the event loop, ``pull`` on PortAudio's thread,
    hence the lock.  Each reply is resampled in one piece (``resample()``),
    since replies start and end on their own.
    """

    def __init__(self, device_rate: int) -> None:
        self.device_rate = device_rate
        self._chunks: deque[np.ndarray] = deque()
        self._lock = threading.Lock()
        self._gain = GainStage()

    def push(self, pcm8k: np.ndarray) -> None:
        pcm = np.asarray(pcm8k, dtype=np.int16)
        if self.device_rate != SAMPLE_RATE:
            pcm = resample(pcm, SAMPLE_RATE, self.device_rate)
        with self._lock:
            self._chunks.append(pcm)

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()

    def set_gain(self, db: float) -> None:
        with self._lock:
            self._gain.set_db(db)

    @property
    def empty(self) -> bool:
        with self._lock:
            return not self._chunks

    def pull(self, n: int) -> np.ndarray:
        """Exactly ``n`` samples: queued audio first, then silence."""
        out = np.zeros(n, dtype=np.int16)
        filled = 0
        with self._lock:
            while filled < n and self._chunks:
                chunk = self._chunks[0]
                take = min(n - filled, len(chunk))
                out[filled : filled + take] = chunk[:take]
                filled += take
                if take == len(chunk):
                    self._chunks.popleft()
                else:
                    self._chunks[0] = chunk[take:]
            return self._gain.apply(out) if filled else out


# ------------------------------------------------------------------- channel


class LocalAudioOutput:
    """MediaOutput over the speaker; ``drained`` waits for the buffer to run dry."""

    POLL_S = 0.05  # the audio thread's "now empty" nudge can race a write; re-check

    def __init__(self, buffer: SpeakerBuffer) -> None:
        self.buffer = buffer
        self._emptied = asyncio.Event()
        self._closed = False

    def write(self, pcm: np.ndarray) -> None:
        if not self._closed and len(pcm):
            self._emptied.clear()
            self.buffer.push(pcm)

    def clear(self) -> None:
        self.buffer.clear()
        self._emptied.set()

    def set_gain(self, db: float) -> None:
        self.buffer.set_gain(db)

    async def playing(self) -> None:
        """The sound card pulls from the buffer at once; its own latency is not visible."""

    async def drained(self) -> None:
        while not (self._closed or self.buffer.empty):
            self._emptied.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._emptied.wait(), self.POLL_S)

    def notify_empty(self) -> None:
        """Called on the loop (via call_soon_threadsafe) when playback ran dry."""
        self._emptied.set()

    def close(self) -> None:
        self._closed = True
        self.buffer.clear()
        self._emptied.set()


class LocalAudioChannel:
    """A call from the person at this computer.

    Keypad digits and hanging up come from the terminal: ``voicebot talk``
    calls :meth:`press` for typed digits and :meth:`end` on Ctrl-C/EOF.
    """

    transport = "local"

    def __init__(
        self,
        devices: AudioDevices,
        *,
        caller_id: str | None = None,
        half_duplex: bool = False,
        sd: ModuleType | None = None,
    ) -> None:
        self.call_id = f"local-{uuid.uuid4().hex[:12]}"
        self.caller_id = caller_id
        self.devices = devices
        self.half_duplex = half_duplex
        self.output = LocalAudioOutput(SpeakerBuffer(devices.output_rate))
        self.overflows = 0  # capture blocks PortAudio reported as overflowed/underflowed
        self._sd = sd
        self._mic = MicrophoneFrames(devices.input_rate)
        self._inbox: asyncio.Queue[InputFrame | None] = asyncio.Queue()
        self._streams: list[Any] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ended = False

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Open and start both streams; must run inside the event loop."""
        sd = self._sd or import_sounddevice()
        self._loop = asyncio.get_running_loop()
        try:
            self._streams = [self._open_input(sd), self._open_output(sd)]
            for stream in self._streams:
                stream.start()
        except sd.PortAudioError as exc:
            self._close_streams()
            raise LocalAudioError(f"cannot open the sound card ({exc}): {NO_DEVICE_HINT}") from exc

    def _open_input(self, sd: ModuleType) -> Any:
        rate = self.devices.input_rate
        return sd.InputStream(
            device=self.devices.input_index,
            samplerate=rate,
            channels=1,
            dtype="int16",
            blocksize=rate * FRAME_MS // 1000,
            callback=self._on_input,
        )

    def _open_output(self, sd: ModuleType) -> Any:
        rate = self.devices.output_rate
        return sd.OutputStream(
            device=self.devices.output_index,
            samplerate=rate,
            channels=1,
            dtype="int16",
            blocksize=rate * FRAME_MS // 1000,
            callback=self._on_output,
        )

    def _close_streams(self) -> None:
        streams, self._streams = self._streams, []
        for stream in streams:
            with contextlib.suppress(Exception):
                stream.stop()
            with contextlib.suppress(Exception):
                stream.close()

    # -------------------------------------------- PortAudio threads → the loop

    def _on_input(self, indata: np.ndarray, frames: int, time: Any, status: Any) -> None:
        if status:
            self.overflows += 1
        if self._loop is not None and not self._ended:
            with contextlib.suppress(RuntimeError):  # the loop closed under a late callback
                self._loop.call_soon_threadsafe(self._on_block, indata.copy())

    def _on_output(self, outdata: np.ndarray, frames: int, time: Any, status: Any) -> None:
        was_empty = self.output.buffer.empty
        outdata[:, 0] = self.output.buffer.pull(frames)
        if not was_empty and self.output.buffer.empty and self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self.output.notify_empty)

    def _on_block(self, block: np.ndarray) -> None:
        if self._ended:
            return
        if self.half_duplex and not self.output.buffer.empty:
            block = np.zeros_like(block)  # don't let the bot hear itself
        for pcm in self._mic.push(block):
            self._inbox.put_nowait(AudioFrame(pcm))

    # ------------------------------------------------------------ the caller

    def press(self, digits: str) -> None:
        """Keypad digits typed at the terminal (invalid characters are ignored)."""
        for digit in digits:
            with contextlib.suppress(ValueError):
                self._inbox.put_nowait(DtmfFrame(digit))

    def end(self, reason: str = "local caller hung up") -> None:
        """The person at the computer hung up (Ctrl-C, EOF)."""
        if self._ended:
            return
        self._ended = True
        self._close_streams()
        self.output.close()
        self._inbox.put_nowait(HangupFrame(reason))

    # ------------------------------------------------------------ CallChannel

    def frames(self) -> AsyncIterator[InputFrame]:
        return inbox_frames(self._inbox)

    async def hangup(self) -> None:
        """The bot ended the call: let the last words play out, then stop the devices."""
        if self._ended:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.output.drained(), 10.0)
        self._ended = True
        self._close_streams()
        self.output.close()
        self._inbox.put_nowait(None)


@contextlib.asynccontextmanager
async def open_local_channel(
    *,
    caller_id: str | None = None,
    input_device: int | str | None = None,
    output_device: int | str | None = None,
    half_duplex: bool = False,
) -> AsyncIterator[LocalAudioChannel]:
    """Find the devices, start them, and always release them afterwards.

    Raises :class:`LocalAudioError` (print its message; it says how to fix it).
    """
    sd = import_sounddevice()
    devices = find_devices(input_device, output_device, sd=sd)
    channel = LocalAudioChannel(devices, caller_id=caller_id, half_duplex=half_duplex, sd=sd)
    channel.start()
    try:
        yield channel
    finally:
        channel.end("local call closed")
