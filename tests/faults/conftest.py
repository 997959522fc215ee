"""Fixtures of the fault suite: a lab of real processes and the fault report.

``lab`` is a :class:`faultkit.FaultLab` whose processes, clients and sockets are ended
when the test ends.  ``fault_report(case, tally_or_counts, **extra)`` records the counts
of a test; with ``TOTO_FAULT_REPORT=path`` set they are appended to ``path`` as one JSON
line per test (for the reliability page of the docs).
"""

import platform
import time

import pytest
from faultkit import FaultLab, Tally, write_report_line


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
        entry = dict(counts)
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
        for name in ('sent', 'answered', 'timed_out', 'errors', 'failed', 'closed', 'lost',
                     'duplicates'):
            line[name] = sum(part.get(name, 0) for part in records)
    write_report_line(line)
