"""Local microphone/speaker transport.

This machine has no sound card, so the device paths are checked against the
real sounddevice (it must fail with a how-to-fix message) and, for the rest,
against a stand-in sounddevice module driven from a thread the way PortAudio
drives its callbacks.  The conversion logic is tested on plain arrays.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import types
from typing import Any, ClassVar

import numpy as np
import pytest

from voicebot.core.frames import FRAME_SAMPLES, AudioFrame, DtmfFrame, HangupFrame
from voicebot.telephony import local_audio
from voicebot.telephony.channel import CallChannel, MediaOutput
from voicebot.telephony.local_audio import (
    AudioDevices,
    LocalAudioChannel,
    LocalAudioError,
    MicrophoneFrames,
    SpeakerBuffer,
    find_devices,
    import_sounddevice,
    open_local_channel,
    to_mono_int16,
)

# ------------------------------------------------------------ error messages


def test_missing_portaudio_says_which_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_portaudio(name: str) -> None:
        raise OSError("PortAudio library not found")

    monkeypatch.setattr(local_audio.importlib, "import_module", no_portaudio)
    with pytest.raises(LocalAudioError, match="apt-get install libportaudio2"):
        import_sounddevice()


def test_missing_sounddevice_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    with pytest.raises(LocalAudioError, match="pip install sounddevice"):
        import_sounddevice()


def test_importing_the_module_does_not_load_portaudio() -> None:
    code = (
        "import sys, voicebot.telephony.local_audio, voicebot.telephony.media_stream; "
        "assert 'sounddevice' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_this_machine_fails_with_a_clear_message_not_a_traceback() -> None:
    """Real sounddevice, real (absent) sound card: a LocalAudioError or a working pair."""
    sd = import_sounddevice()
    if len(sd.query_devices()) == 0:
        with pytest.raises(LocalAudioError, match="no audio devices found"):
            find_devices()
        with pytest.raises(LocalAudioError, match="voicebot simulate"):
            async with open_local_channel():
                pass
    else:  # a developer machine with a sound card
        with contextlib.suppress(LocalAudioError):
            find_devices()


class FakePortAudioError(Exception):
    pass


class FakeStream:
    """Records how it was opened; tests call its callback as PortAudio would."""

    fail_with: ClassVar[Exception | None] = None
    opened: ClassVar[list[FakeStream]] = []

    def __init__(self, **kwargs: Any) -> None:
        if FakeStream.fail_with is not None:
            raise FakeStream.fail_with
        self.kwargs = kwargs
        self.callback = kwargs["callback"]
        self.state = "opened"
        FakeStream.opened.append(self)

    def start(self) -> None:
        self.state = "started"

    def stop(self) -> None:
        self.state = "stopped"

    def close(self) -> None:
        self.state = "closed"


def fake_sounddevice(devices: list[dict[str, Any]], default: tuple[int, int]) -> types.ModuleType:
    sd = types.ModuleType("sounddevice")

    def query_devices(device: int | str | None = None, kind: str | None = None) -> Any:
        if device is None and kind is None:
            return list(devices)
        index = device if device is not None else default[0 if kind == "input" else 1]
        if not isinstance(index, int) or not 0 <= index < len(devices):
            raise FakePortAudioError(f"Error querying device {index}")
        return devices[index]

    sd.query_devices = query_devices  # type: ignore[attr-defined]
    sd.PortAudioError = FakePortAudioError  # type: ignore[attr-defined]
    sd.InputStream = FakeStream  # type: ignore[attr-defined]
    sd.OutputStream = FakeStream  # type: ignore[attr-defined]
    return sd


def device(index: int, name: str, ins: int, outs: int, rate: float) -> dict[str, Any]:
    return {
        "index": index,
        "name": name,
        "max_input_channels": ins,
        "max_output_channels": outs,
        "default_samplerate": rate,
    }


HEADSET = [device(0, "USB headset", 1, 0, 48000.0), device(1, "USB headset", 0, 2, 44100.0)]


@pytest.mark.parametrize(
    ("devices", "default", "message"),
    [
        ([], (-1, -1), "no audio devices found"),
        ([HEADSET[1]], (-1, 0), r"no microphone \(input\) device"),
        ([HEADSET[0]], (0, -1), r"no speaker \(output\) device"),
        ([HEADSET[1]], (0, 0), "has no input channels"),
    ],
)
def test_missing_devices_are_named(
    devices: list[dict[str, Any]], default: tuple[int, int], message: str
) -> None:
    with pytest.raises(LocalAudioError, match=message):
        find_devices(sd=fake_sounddevice(devices, default))


def test_devices_are_used_at_their_own_rates() -> None:
    found = find_devices(sd=fake_sounddevice(HEADSET, (0, 1)))
    assert found == AudioDevices(0, "USB headset", 48000, 1, "USB headset", 44100)


# ---------------------------------------------------------------- conversion


def tone(rate: int, seconds: float, hz: float = 1000.0) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (10000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def dominant_hz(pcm: np.ndarray, rate: int = 8000) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float(np.fft.rfftfreq(len(pcm), 1 / rate)[spectrum.argmax()])


@pytest.mark.parametrize("rate", [48000, 44100, 16000])
def test_microphone_blocks_become_20ms_frames_at_8khz(rate: int) -> None:
    mic = MicrophoneFrames(rate)
    captured = tone(rate, 1.0)
    block = rate // 50
    frames = [
        f for i in range(0, len(captured), block) for f in mic.push(captured[i : i + block, None])
    ]
    frames += mic.flush()
    assert all(len(f) == FRAME_SAMPLES and f.dtype == np.int16 for f in frames)
    assert abs(len(frames) - 50) <= 1
    pcm = np.concatenate(frames)
    assert dominant_hz(pcm[800:-800]) == pytest.approx(1000, abs=10)
    assert np.abs(pcm[800:-800]).max() == pytest.approx(10000, rel=0.1)


def test_microphone_at_8khz_passes_through_unchanged() -> None:
    mic = MicrophoneFrames(8000)
    pcm = tone(8000, 0.1)
    frames = mic.push(pcm[:100]) + mic.push(pcm[100:]) + mic.flush()
    np.testing.assert_array_equal(np.concatenate(frames)[:800], pcm)


def test_stereo_and_float_blocks_become_mono_int16() -> None:
    stereo = np.array([[0.5, 0.5], [1.5, 1.5], [-0.25, -0.75]], dtype=np.float32)
    np.testing.assert_array_equal(to_mono_int16(stereo), np.array([16384, 32767, -16384], np.int16))
    np.testing.assert_array_equal(
        to_mono_int16(np.array([[100], [-100]], dtype=np.int16)), np.array([100, -100], np.int16)
    )


def test_speaker_buffer_resamples_and_pads_with_silence() -> None:
    buffer = SpeakerBuffer(48000)
    buffer.push(tone(8000, 0.1, hz=440))
    blocks = [buffer.pull(960) for _ in range(7)]
    assert buffer.empty
    played = np.concatenate(blocks)
    assert np.abs(played[:4800]).max() > 9000
    assert not played[4800 + 50 :].any()  # then silence
    assert dominant_hz(played[:4800], 48000) == pytest.approx(440, abs=15)
    buffer.push(tone(8000, 0.1))
    buffer.clear()
    assert buffer.empty and not buffer.pull(960).any()


def test_speaker_buffer_ducks_what_it_has_not_played_yet() -> None:
    buffer = SpeakerBuffer(8000)
    buffer.push(tone(8000, 0.2))
    full = np.abs(buffer.pull(400)).max()
    buffer.set_gain(-20)
    buffer.pull(160)  # ramps down
    assert np.abs(buffer.pull(400)).max() == pytest.approx(full / 10, rel=0.05)


# ------------------------------------------------------------------ channel


@pytest.fixture
def fake_sd() -> types.ModuleType:
    FakeStream.opened = []
    FakeStream.fail_with = None
    return fake_sounddevice(HEADSET, (0, 1))


async def test_channel_turns_callbacks_into_frames_and_plays_replies(
    fake_sd: types.ModuleType,
) -> None:
    channel = LocalAudioChannel(find_devices(sd=fake_sd), caller_id="+15550100", sd=fake_sd)
    assert isinstance(channel, CallChannel) and isinstance(channel.output, MediaOutput)
    channel.start()
    mic, speaker = FakeStream.opened
    assert (mic.kwargs["samplerate"], mic.kwargs["blocksize"], mic.kwargs["dtype"]) == (
        48000,
        960,
        "int16",
    )
    assert (speaker.kwargs["samplerate"], speaker.kwargs["blocksize"]) == (44100, 882)
    assert mic.state == speaker.state == "started"

    captured = tone(48000, 0.5)

    def portaudio_input_thread() -> None:
        for i in range(0, len(captured), 960):
            mic.callback(captured[i : i + 960, None].copy(), 960, None, None)

    await asyncio.to_thread(portaudio_input_thread)
    channel.press("12x#")
    channel.end()
    frames = [f async for f in channel.frames()]
    audio = [f for f in frames if isinstance(f, AudioFrame)]
    assert 20 <= len(audio) <= 25
    assert "".join(f.digit for f in frames if isinstance(f, DtmfFrame)) == "12#"
    assert frames[-1] == HangupFrame("local caller hung up")
    assert mic.state == speaker.state == "closed"


async def test_output_drains_as_the_speaker_plays(fake_sd: types.ModuleType) -> None:
    channel = LocalAudioChannel(find_devices(sd=fake_sd), sd=fake_sd)
    channel.start()
    speaker = FakeStream.opened[1]
    channel.output.write(tone(8000, 0.1))
    waiter = asyncio.create_task(channel.output.drained())
    await asyncio.sleep(0.02)
    assert not waiter.done()

    def portaudio_output_thread() -> np.ndarray:
        played = []
        for _ in range(8):
            out = np.zeros((882, 1), np.int16)
            speaker.callback(out, 882, None, None)
            played.append(out[:, 0].copy())
        return np.concatenate(played)

    played = await asyncio.to_thread(portaudio_output_thread)
    await asyncio.wait_for(waiter, 0.5)
    assert np.abs(played[:4000]).max() > 9000 and not played[4500:].any()
    channel.output.write(tone(8000, 1.0))
    channel.output.clear()  # barge-in
    await asyncio.wait_for(channel.output.drained(), 0.1)
    await channel.hangup()
    assert [f async for f in channel.frames()] == []  # the bot hung up: no caller hang-up frame


async def test_half_duplex_mutes_the_microphone_while_the_bot_speaks(
    fake_sd: types.ModuleType,
) -> None:
    channel = LocalAudioChannel(
        find_devices(sd=fake_sounddevice([device(0, "pc", 1, 1, 8000.0)], (0, 0))),
        half_duplex=True,
        sd=fake_sd,
    )
    channel.start()
    mic = FakeStream.opened[0]
    channel.output.write(tone(8000, 1.0))
    await asyncio.to_thread(mic.callback, tone(8000, 0.02)[:, None], 160, None, None)
    channel.output.clear()
    await asyncio.to_thread(mic.callback, tone(8000, 0.02)[:, None], 160, None, None)
    channel.end()
    audio = [f.pcm for f in [f async for f in channel.frames()] if isinstance(f, AudioFrame)]
    assert len(audio) == 2 and not audio[0].any() and audio[1].any()


async def test_a_device_that_will_not_open_is_reported(fake_sd: types.ModuleType) -> None:
    FakeStream.fail_with = FakePortAudioError("Invalid sample rate")
    channel = LocalAudioChannel(find_devices(sd=fake_sd), sd=fake_sd)
    with pytest.raises(LocalAudioError, match=r"cannot open the sound card.*Invalid sample rate"):
        channel.start()
