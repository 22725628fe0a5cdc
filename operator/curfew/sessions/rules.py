"""curfew.sessions.rules (in progress)."""
