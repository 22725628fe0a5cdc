"""curfew.sessions.store (in progress)."""
