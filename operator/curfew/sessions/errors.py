"""Errors of the session store. Callers catch one type per outcome, never a redis-py exception::

    StoreError                  anything the store layer raises
    ├── StoreUnavailable        the store cannot answer now: connection refused or reset, timeout,
    │                           Cluster down or resharding, replica read-only after failover,
    │                           loading its dataset, Sentinel has no master. Retrying later helps.
    ├── StoreConfigError        the store URL or its options are invalid. Retrying never helps.
    └── StoreDataError          Redis answered something the schema does not allow (a foreign
                                key of the wrong type under Curfew's prefix, for one).
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error the session store raises."""


class StoreUnavailable(StoreError):
    """The store cannot answer now; the message says why, without credentials."""


class StoreConfigError(StoreError, ValueError):
    """The store URL or options are invalid."""


class StoreDataError(StoreError):
    """Redis returned data the key schema does not allow."""
