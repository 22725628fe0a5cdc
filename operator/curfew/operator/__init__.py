"""``curfew operator``: kopf keeps the cluster equal to what ``curfew render`` computes.

Modules: :mod:`handlers` (the kopf decorators), :mod:`reconciler` (the one level-based
``reconcile``, put together from :mod:`queue`, :mod:`namespace_pass`, :mod:`memory`,
:mod:`recorder` and :mod:`purge_jobs`), :mod:`plan` and :mod:`status` (pure decisions),
:mod:`injection` (the webhook's admission side) and :mod:`webhook_tls` (its TLS), :mod:`runtime`
and :mod:`runner` (wiring), :mod:`settings`, :mod:`messages` (user-visible strings),
:mod:`metrics`.
"""

from curfew.operator.reconciler import PassFailed, PassResult, Reconciler
from curfew.operator.runner import run_operator
from curfew.operator.settings import OperatorSettings

__all__ = ["OperatorSettings", "PassFailed", "PassResult", "Reconciler", "run_operator"]
