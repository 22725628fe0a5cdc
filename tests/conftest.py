"""Suite-wide pytest configuration: shared fixtures are plugins under tests/fixtures/."""

pytest_plugins = [
    "fixtures.redis_servers",
    "fixtures.apps.spring",
]
