"""curfew.purge."""
