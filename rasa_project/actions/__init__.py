"""Custom actions for the voicebot bank line (loaded by rasa_sdk: ``--actions actions``)."""
