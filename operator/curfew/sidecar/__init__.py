"""curfew.sidecar."""
