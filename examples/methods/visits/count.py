"""``visits.count``: how many visits were recorded, as ``{'visits': N}``."""

import io

from . import visits_file
from toto.invocation import *


def invoke(worker, parameters):
    try:
        with io.open(visits_file(), encoding='utf-8') as log:
            return {'visits': sum(1 for line in log if line.strip())}
    except IOError:  # nothing recorded yet (FileNotFoundError is an IOError)
        return {'visits': 0}
