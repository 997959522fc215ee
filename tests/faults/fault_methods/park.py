"""Hold the worker busy (parked) so calls pile up behind it, or answer at once.

It parks when ``parameters['park']`` is true or the process has ``TOTO_FAULT_PARK=1``
in its environment; with ``park == 'once'`` only while ``parameters['marker']`` does
not exist yet (so a resent call is answered at once by whoever gets it).
"""

import os
import time

from fault_methods._files import write_atomically


def invoke(worker, parameters):
    park = parameters.get('park') or os.environ.get('TOTO_FAULT_PARK') == '1'
    marker = parameters.get('marker')
    if park == 'once' and marker and os.path.exists(marker):
        park = False
    if park:
        if marker:
            write_atomically(marker, str(os.getpid()))
        time.sleep(parameters.get('seconds', 30.0))
    return {'pid': os.getpid(), 'n': parameters.get('n')}
