"""``visits.record``: an asynchronous method.

Because of ``@asynchronous`` the worker acknowledges the call before the
method runs: the caller's answer is ``None``, whatever happens next, and it
does not wait for the file to be written.  An exception raised here is only
logged by the worker, since the caller already has its answer.
"""

import io

from . import visits_file
from toto.invocation import *


@asynchronous
def invoke(worker, parameters):
    name = parameters.get('name')
    if not name:
        raise TotoException(ERROR_MISSING_PARAMS, 'name is required')
    with io.open(visits_file(), 'a', encoding='utf-8') as log:
        log.write(u'%s\n' % name)
