"""Speech: Whisper STT, pyttsx3 TTS, the domain prompt and spoken-digit normalisation."""
