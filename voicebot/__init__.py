"""voicebot: a telephone voice assistant that hands callers to humans when it should."""

__version__ = "0.1.0"
