"""Running voicebot in production: health, readiness, metrics."""
