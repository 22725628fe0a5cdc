"""Integration tests: real servers (Redis, the kmock API server, HTTP, helm)."""
