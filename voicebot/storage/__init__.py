"""Where call records live: SQLite by default, behind a small interface."""
