"""curfew.sessions.identity (in progress)."""
