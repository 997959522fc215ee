"""The worker methods of the example application.

Every module below this package is one method: a call to ``'greet'`` runs
``methods/greet.py`` and a call to ``'visits.count'`` runs
``methods/visits/count.py``.  Each has an ``invoke(worker, parameters)``
function whose return value is the caller's answer.
"""
