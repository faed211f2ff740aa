"""Old import path of :mod:`voicebot.core.logs`, kept only while voicebot/telephony/sip
is being split; delete once it imports ``voicebot.core.logs``."""

from voicebot.core.logs import CallLogger, format_event  # noqa: F401
