"""curfew.sessions."""
