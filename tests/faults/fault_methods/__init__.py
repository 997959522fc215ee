"""Worker methods for the fault suite, run by real TotoWorkerService and
TotoHTTPWorkerService processes (``--method_module=fault_methods``).

``echo``        the parameters, unchanged
``pid``         ``{'pid': <worker process id>}``
``park``        parks the worker (writes ``parameters['marker']`` with its pid, then
                sleeps ``parameters['seconds']``) when ``parameters['park']`` is true or
                the process has ``TOTO_FAULT_PARK=1`` in its environment; answers
                ``{'pid': ..., 'n': parameters['n']}``
``late``        sleeps ``parameters['seconds']``, then writes ``parameters['done']`` (its
                pid) and answers ``{'pid': ..., 'late': True}``
``late_once``   like ``late`` the first time ``parameters['marker']`` does not exist
                (it creates it); answers at once afterwards with ``'late': False``
``bad_pickle``  answers an object whose pickle raises when it is loaded
``aliases``     imports this package under two names, so every method has endless
                spellings (``aliases.package.aliases.fault_methods.echo``);
                ``aliases.Tally`` is a method that is a class
"""
