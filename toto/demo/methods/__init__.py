"""The method module bundled with ``python -m toto.demo``.

Each submodule is one worker method with an ``invoke(worker, parameters)``
function: ``greet``, ``arith.add``, ``reject`` and ``remember``.
"""
