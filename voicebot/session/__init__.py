"""The call session: one object per call that owns the conversation."""
