"""Dialogue: the Rasa server (its own venv, spoken to over HTTP) and how voicebot uses it."""
