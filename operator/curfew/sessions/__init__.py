"""The session store layer shared by the sidecar and the purge job.

Public surface (pure, importable without redis)::

    from curfew.sessions import session_hash, app_session_key, Decision, Limits, Verdict
    from curfew.sessions import StoreError, StoreUnavailable

What a store offers the purge job and the sidecar's check is the ``SessionStore`` protocol
(``curfew.sessions.protocol``, no redis). Its implementations are imported from their own
modules, so pure importers never load redis::

    from curfew.sessions.store import RedisSessionStore   # Redis, Sentinel, Cluster
    from curfew.sessions.memory import MemoryStore        # in-process: the demo, tests

Modules: ``identity`` (keyed hashes), ``keys`` (the key schema), ``cookies`` (the one reading
of a session cookie), ``rules`` (the decisions, a mirror of the Lua script), ``formats`` (reading
the apps' own session records), ``errors``, ``protocol`` (the ``SessionStore`` protocol),
``store`` (redis-py asyncio) and ``memory`` (in-process).
"""

from curfew.sessions.errors import StoreConfigError, StoreDataError, StoreError, StoreUnavailable
from curfew.sessions.identity import session_hash
from curfew.sessions.keys import app_session_key, curfew_namespace
from curfew.sessions.lifetime import Decision, Limits, Reason, Verdict

__all__ = [
    "Decision",
    "Limits",
    "Reason",
    "StoreConfigError",
    "StoreDataError",
    "StoreError",
    "StoreUnavailable",
    "Verdict",
    "app_session_key",
    "curfew_namespace",
    "session_hash",
]
