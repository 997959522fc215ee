"""An asynchronous method: it waits for a gate file, then writes an output file.

The worker acknowledges the call before running it, so the caller can receive the
acknowledgement, open the gate and then see the output appear.  Were the acknowledgement
sent after the method ran, the caller would have nothing to open the gate with and the
output would say so.
"""

import os
import time

from toto.invocation import asynchronous


@asynchronous
def invoke(worker, parameters):
    gate, output = parameters['gate'], parameters['output']
    deadline = time.time() + parameters.get('wait', 10.0)
    while not os.path.exists(gate) and time.time() < deadline:
        time.sleep(0.01)
    text = 'ran after the gate opened' if os.path.exists(gate) else 'the gate never opened'
    with open(output + '.tmp', 'w') as stream:
        stream.write('%s in %d' % (text, os.getpid()))
    os.rename(output + '.tmp', output)
    return 'an asynchronous method result is never sent'
