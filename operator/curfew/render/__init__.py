"""curfew.render."""
