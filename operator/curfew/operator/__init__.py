"""curfew.operator."""
