"""curfew.sessions.keys (in progress)."""
