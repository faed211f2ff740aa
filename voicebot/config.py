"""Configuration: embedded defaults, optionally overridden by a TOML file.

Every knob has a working default so ``voicebot serve`` runs with no file at
all.  A TOML file (``--config`` or ``$VOICEBOT_CONFIG``) overrides any subset,
section by section, e.g.::

    [speech]
    model_dir = "tiny.en"
    [session]
    disclosure = "You're talking to the bank's automated assistant…"
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Annotated, Any, Literal

from voicebot.cluster.config import ClusterConfig
from voicebot.core.config_check import (
    Count,
    Port,
    Range,
    Seconds,
    SettingError,
    check_dataclass,
    unknown_key,
)
from voicebot.dialogue.intents import IntentCatalog, IntentCatalogError, load_intents
from voicebot.handoff.config import HandoffConfig
from voicebot.telephony.sip.config import SipConfig
from voicebot.transfer.config import TransferConfig

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RASA_PROJECT = PROJECT_ROOT / "rasa_project"


@dataclass
class MediaStreamTransferConfig:
    """Where transfers of media-stream calls are posted (None: not configured)."""

    webhook_url: str | None = None
    timeout_s: float = 10.0
    secret: str | None = None  # HMAC-SHA256 key for X-Voicebot-Signature (required)
    # The body carries the transcript: plain HTTP only when said so (local trials).
    allow_plain_http: bool = False

    def validate(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError("media stream transfer timeout_s must be positive")
        if not self.webhook_url:
            return
        schemes = ("https://", "http://") if self.allow_plain_http else ("https://",)
        if not self.webhook_url.startswith(schemes):
            raise ValueError(
                f"media_stream_transfer.webhook_url must be https:// (plain http only with "
                f"allow_plain_http = true, for local trials): {self.webhook_url!r}"
            )
        if not self.secret:
            raise ValueError(
                "media_stream_transfer.secret is required: integrators must be able to "
                "check that a transfer request comes from voicebot"
            )


@dataclass
class MediaStreamConfig:
    """Carrier media streams: who may connect, and how much they may send."""

    # False accepts any WebSocket client as a call: local trials only (voicebot
    # refuses to start with it on a listener that is not loopback).
    authentication: bool = True
    twilio_auth_token: str | None = None  # or $VOICEBOT_TWILIO_AUTH_TOKEN
    # The base URL Twilio reaches voicebot at, e.g. "https://bot.example.com"
    # (behind a TLS proxy the URL the server sees is not the one Twilio signs).
    public_url: str | None = None
    token_ttl_s: float = 60.0  # between the voice webhook and the stream's start
    max_streams: int = 16  # concurrent streams; more get 503 before the upgrade
    burst_s: float = 2.0  # audio a stream may send ahead of real time

    def validate(self) -> None:
        if self.max_streams < 1:
            raise ValueError("media_stream.max_streams must be at least 1")
        if self.token_ttl_s <= 0 or self.burst_s <= 0:
            raise ValueError("media_stream.token_ttl_s and burst_s must be positive")
        if self.public_url and not self.public_url.startswith(("https://", "http://")):
            raise ValueError(f"media_stream.public_url must be http(s): {self.public_url!r}")

    def auth_token(self) -> str | None:
        return self.twilio_auth_token or os.environ.get("VOICEBOT_TWILIO_AUTH_TOKEN") or None

    def check_listener(self, host: str) -> None:
        """Authentication off is for trials on this machine only."""
        if self.authentication:
            return
        try:
            loopback = host == "localhost" or ip_address(host.strip("[]")).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(
                "media_stream.authentication = false accepts any client as a call: "
                f"allowed only on a loopback HTTP listener, not {host!r}"
            )


def cache_dir() -> Path:
    """Where assembled models and synthesised prompts live.

    ``$VOICEBOT_CACHE`` if set, else ``$XDG_CACHE_HOME/voicebot`` or ``~/.cache/voicebot``.
    """
    if explicit := os.environ.get("VOICEBOT_CACHE"):
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "voicebot"


def state_dir() -> Path:
    """Where voicebot keeps what it records: ``$XDG_STATE_HOME/voicebot`` or
    ``~/.local/state/voicebot`` (the same place whatever the current directory)."""
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "voicebot"


def serve_pid_file() -> Path:
    """Where ``voicebot serve`` writes its PID (``voicebot reload`` reads it)."""
    return state_dir() / "serve.pid"


def default_database() -> Path:
    """The call store when ``[storage] database`` is not set."""
    return state_dir() / "calls.sqlite3"


# Worded and paced for espeak on a phone line: "press zero" (not "0") and a
# short "bank's … assistant" survived Whisper's reading of the telephone-band
# audio far better than the first wording did (checked by transcribing it).
DEFAULT_DISCLOSURE = (
    "Hello, this is the bank's automated assistant, and this call is transcribed. "
    "To speak to a person at any time, say agent, or press zero. "
    "How can I help?"
)


@dataclass
class SpeechConfig:
    """Speech recognition (faster-whisper) settings."""

    # A CTranslate2 Whisper folder; None means the packaged base model.
    model_dir: str | None = None
    # Two threads per decode, two decodes at once (measured on 2 cores, base int8):
    # alone 0.35 s vs 0.50 s with one thread, and no worse with four calls queued.
    cpu_threads: Count = 2
    num_workers: Count = 2
    beam_size: Count = 1
    # Shortest encoder window in seconds (the encoder costs ~840 ms at 30 s, ~90 ms at 8 s).
    min_window_s: Annotated[float, Range(gt=0, le=30)] = 8.0
    use_domain_prompt: bool = True


@dataclass
class TtsConfig:
    """Speech synthesis settings; ``engine`` picks the voice (README: "The bot's voice")."""

    engine: Literal["pyttsx3", "piper"] = "pyttsx3"  # piper: natural; GPL-3.0-or-later
    # pyttsx3 only: an espeak-ng voice id with an optional variant.  The Klatt
    # variant, slower and a little higher, was the best heard through the phone
    # band (scripts/bench_voice: WER 0.20 over all 98 texts vs 0.37 for plain
    # en-US on a slice; klatt2/5/6, 130 wpm, pitch 80, output filters and
    # espeak's consonant level were all within noise of it).
    voice: str | None = "gmw/en-US+klatt4"
    rate_wpm: Annotated[int, Range(ge=80, le=450)] = 145  # espeak-ng's own limits
    pitch: Annotated[int, Range(ge=0, le=100)] = 65  # espeak-ng 0-100
    # espeak-ng: extra pause between words (10-30 ms did not help)
    word_gap_ms: Annotated[int, Range(ge=0, le=1000)] = 0
    piper_model: str | None = None  # piper only: a .onnx voice; None = the packaged one
    # sentences; every fixed reply (~90 sentences, ~25 MB at 512) stays in it
    cache_size: Annotated[int, Range(ge=0)] = 512
    # keep rendered digit-free sentences in <cache>/tts/ across restarts (Piper: no minute
    # of start-up rendering after the first); off, or cache_size 0, keeps nothing on disk
    disk_cache: bool = True


@dataclass
class EndpointingConfig:
    """Turn-taking: when has the caller finished, when are they interrupting."""

    # Silero scores telephone-band speech low: "Agent." peaks at 0.40 on our fixtures,
    # while line noise, a cough and silence stay under 0.07 (measured on audio_fixtures).
    speech_threshold: Annotated[float, Range(gt=0, lt=1)] = 0.3
    # Shorter blips are not a turn.  A curt "Yes." scores only ~0.2 s voiced after
    # earlier speech; noise and a cough score none (Silero under 0.07), and a blip
    # that does pass costs one empty transcript, never an interruption.
    min_speech_s: float = 0.15
    # A pause this long starts STT on the words so far, before the turn is over.
    # The utterance keeps exactly this much silence after the last voiced window,
    # so if the caller stays quiet the early transcript is the final one.  (Silero
    # windows are 32 ms: 0.12 s is four of them.  Over SIP, 0.12 s instead of
    # 0.15 s took ~30 ms off every reply with the same transcripts.)
    pause_s: Seconds = 0.12
    # End the turn as soon as that early transcript reads as a finished request
    # ("What's my balance?"), instead of waiting for ``end_silence_s``.
    semantic_end_of_turn: bool = True
    # The longest pause that still ends a turn: what unfinished words ("My card
    # was") or an unread transcript wait for.  On the pause fixtures 0.6 s cut the
    # caller off 40 % of the time, 1.0 s never (bench 2026-11-26).
    end_silence_s: Seconds = 1.0
    max_utterance_s: Seconds = 20.0
    pre_roll_s: float = 0.35  # onsets ("four…") score low: keep audio before detection
    barge_in_min_speech_s: float = 0.3  # a 100 ms burst of voice scores ~0.2 s: no barge-in
    # Clear voice interrupts sooner: this much voiced audio whose mean Silero score is at
    # least ``barge_in_clear_voice_prob``.  Coughs and line noise on the fixtures score
    # under 0.1; speech onsets score 0.5-0.9 (a quiet "Agent." ~0.3, which waits the full
    # ``barge_in_min_speech_s``).
    barge_in_clear_voice_s: float = 0.19
    barge_in_clear_voice_prob: float = 0.5
    # Until then the bot's reply is ducked by this much the moment the caller's voice may
    # have begun (Silero rose), and gets its full level back if the voice fades unconfirmed
    # (a cough): the caller hears the bot give way ~0.15 s before it stops.  0: no ducking.
    barge_in_duck_db: Annotated[float, Range(ge=0, le=60)] = 15.0


@dataclass
class DialogueConfig:
    """How voicebot reaches Rasa."""

    # URL of an already-running Rasa server; None = voicebot starts its own.
    rasa_url: str | None = None
    # The Rasa project (data, domain, intents.yml, actions, trained models);
    # None = the shipped rasa_project/.  Relative in a config file: to that file.
    project_dir: str | None = None
    auth_token: str | None = None  # None = a random token per managed server
    rasa_port: Port = 0  # 0 = pick a free port
    action_port: Port = 0
    request_timeout_s: Seconds = 10.0
    startup_timeout_s: Seconds = 120.0
    # Supervision: how often the dialogue is checked (0 = never), how many failed
    # /status checks in a row mark it down (a dead process counts at once), and
    # the back-off between restarts of a managed Rasa (doubling up to the maximum).
    health_interval_s: float = 1.0
    health_failures: Count = 3
    restart_backoff_s: Seconds = 1.0
    restart_backoff_max_s: Seconds = 30.0

    def project_path(self) -> Path:
        return Path(self.project_dir) if self.project_dir else DEFAULT_RASA_PROJECT


@dataclass
class SessionConfig:
    """Per-call behaviour."""

    disclosure: str = DEFAULT_DISCLOSURE
    silence_prompt_s: Seconds = 8.0
    silence_prompt: str = "Are you still there? How can I help?"
    silence_goodbye: str = "I haven't heard anything, so I'll end the call now. Goodbye."
    rasa_error_apology: str = (
        "I'm sorry, I'm having trouble understanding right now. Could you say that again?"
    )
    not_heard_prompt: str = "Sorry, I didn't catch that. Could you say it again?"
    # Speech this long that STT could not read gets "didn't catch that" instead of
    # dead air; shorter blips (a cough, a breath) are ignored.
    not_heard_min_voiced_s: float = 0.4
    dtmf_interdigit_s: Seconds = 2.0
    max_call_s: Seconds = 900.0


@dataclass
class StorageConfig:
    """Where call records are kept."""

    # None = default_database(); a relative path in a config file is relative to that file.
    database: str | None = None
    # Calls, handoff packages and callback requests older than this are deleted
    # (at start-up, then daily).  None keeps everything.
    retention_days: Annotated[float, Range(gt=0)] | None = 90.0

    # "postgresql://user@host/db": the shared store of a cluster (every
    # instance uses the same); empty: the SQLite file ``database``.
    url: str = ""

    def path(self) -> Path:
        return Path(self.database) if self.database else default_database()


@dataclass
class HttpConfig:
    """The HTTP listener: carrier media streams, the agent desk, /health."""

    listen_host: str = "127.0.0.1"
    listen_port: Port = 8080
    # Served behind a TLS-terminating proxy: mark the desk's cookie Secure (the
    # request itself looks like plain HTTP here).
    tls_proxy: bool = False


@dataclass
class Config:
    speech: SpeechConfig = field(default_factory=SpeechConfig)
    tts: TtsConfig = field(default_factory=TtsConfig)
    endpointing: EndpointingConfig = field(default_factory=EndpointingConfig)
    dialogue: DialogueConfig = field(default_factory=DialogueConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    handoff: HandoffConfig = field(default_factory=HandoffConfig)
    sip: SipConfig = field(default_factory=SipConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    media_stream: MediaStreamConfig = field(default_factory=MediaStreamConfig)
    media_stream_transfer: MediaStreamTransferConfig = field(
        default_factory=MediaStreamTransferConfig
    )
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    # Not a setting: the Rasa project's intents.yml (load_config reads dialogue.project_dir's).
    intents: IntentCatalog = field(
        default_factory=lambda: load_intents(DEFAULT_RASA_PROJECT), metadata={"derived": True}
    )

    def validate(self) -> None:
        """Types and ranges of every setting, then rules that keep promises to callers."""
        try:
            check_dataclass(self)
        except SettingError as exc:
            raise ConfigError(str(exc)) from exc
        if self.endpointing.pause_s >= self.endpointing.end_silence_s:
            raise ConfigError("endpointing.pause_s must be below endpointing.end_silence_s")
        if not self.session.disclosure.strip():
            raise ConfigError(
                "session.disclosure must not be empty: every call starts by telling the "
                "caller they are talking to an automated assistant"
            )
        sections = (self.transfer, self.handoff, self.sip, self.media_stream)
        for section in (*sections, self.media_stream_transfer, self.cluster):
            try:
                section.validate()
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc


class ConfigError(ValueError):
    """The configuration file is malformed or breaks a rule."""


def _merge(obj: Any, overrides: dict[str, Any], where: str) -> None:
    names = {f.name: f for f in dataclasses.fields(obj) if not f.metadata.get("derived")}
    for key, value in overrides.items():
        if key not in names:
            raise ConfigError(str(unknown_key(key, names, where)))
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}{key} must be a table")
            _merge(current, value, f"{where}{key}.")
        else:
            setattr(obj, key, value)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Defaults, then the TOML file at ``path`` or ``$VOICEBOT_CONFIG``."""
    config = Config()
    path = path or os.environ.get("VOICEBOT_CONFIG")
    try:
        data = _read_file(config, Path(path)) if path else {}
        _apply_intents(config, set(data.get("transfer", {})))
        if url := os.environ.get("VOICEBOT_RASA_URL"):
            config.dialogue.rasa_url = url
        if token := os.environ.get("VOICEBOT_RASA_TOKEN"):
            config.dialogue.auth_token = token
        config.validate()
    except ConfigError as exc:
        raise ConfigError(f"config {path}: {exc}" if path else str(exc)) from exc
    return config


def _read_file(config: Config, path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read it: {exc}") from exc
    _merge(config, data, "")
    for section, key in (("storage", "database"), ("dialogue", "project_dir")):
        value = getattr(getattr(config, section), key)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            setattr(getattr(config, section), key, str(path.resolve().parent / value))
    return data


# Transfer settings whose defaults come from the Rasa project's intents.yml (a
# [transfer] value in the config file still wins).
_FROM_INTENTS = {
    "complexity_intents": "complexity",
    "request_intents": "requests",
    "request_keywords": "keywords",
}


def _apply_intents(config: Config, set_in_file: set[str]) -> None:
    try:
        config.intents = load_intents(config.dialogue.project_path())
    except IntentCatalogError as exc:
        raise ConfigError(str(exc)) from exc
    for name, view in _FROM_INTENTS.items():
        if name not in set_in_file:
            setattr(config.transfer, name, getattr(config.intents, view))
