"""Integration tests of the operator against the kmock API server."""
