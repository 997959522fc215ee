"""Fixtures of the fault suite: a lab of real processes and the fault report.

``lab`` is a :class:`faultkit.FaultLab` whose processes, clients and sockets are ended
when the test ends.  ``fault_report(case, tally_or_counts, **extra)`` records the counts
of a test; with ``TOTO_FAULT_REPORT=path`` set they are appended to ``path`` as one JSON
line per test (for the reliability page of the docs).
"""

import platform
import time

import pytest
from faultkit import COUNT_NAMES, FaultLab, Tally, write_report_line
from tornado.options import options


@pytest.fixture
def lab(tmp_path):
    with FaultLab(str(tmp_path)) as faults:
        yield faults


@pytest.fixture
def fault_report(request):
    started = time.time()
    records = []

    def record(case, counts, **extra):
        if isinstance(counts, Tally):
            counts = counts.counts()
        entry = dict((name, 0) for name in COUNT_NAMES)
        entry.update(counts)
        entry.update(extra)
        entry['case'] = case
        records.append(entry)

    yield record
    if not records:
        return
    line = {'test': request.node.name, 'python': platform.python_version(),
            'seconds': round(time.time() - started, 2)}
    if len(records) == 1:
        line.update(records[0])
    else:
        line['case'] = records[0]['case']
        line['parts'] = records
        for name in COUNT_NAMES:
            line[name] = sum(part.get(name, 0) for part in records)
    write_report_line(line)


def forget_shared_instances():
    """Drop (and close) the connections ``instance()`` made."""
    import toto.workerconnection as workerconnection
    workerconnection._clear_instances()


@pytest.fixture
def shared_options():
    """The tornado options (all of them) and shared instances, restored afterwards."""
    import toto.httpworker  # noqa: F401 - defines every worker and service option
    import toto.workerconnection  # noqa: F401
    saved = options.as_dict()
    forget_shared_instances()
    try:
        yield options
    finally:
        forget_shared_instances()
        for name, value in saved.items():
            if getattr(options, name) != value:
                setattr(options, name, value)
