"""The purge job (``curfew purge``, run by each policy's CronJob): removes sessions past their
limits from the shared store, app formats included, and reports one summary line.

Modules: ``target`` (the config documents as what one run judges by, pure), ``settings``,
``engine`` (gather, check the cap, remove), ``report`` (audit events, summary, progress).
"""
