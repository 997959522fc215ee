"""Turn the fault suite's JSON lines into the reStructuredText tables of the docs.

Run the suite on each Python with ``TOTO_FAULT_REPORT`` set, then::

    python tests/faults/render_report.py 3.11=faults-311.jsonl 2.7=faults-27.jsonl \\
        > docs/generated/fault-table.rst
    python tests/faults/render_report.py --bursts 3.11=faults-311.jsonl \\
        2.7=faults-27.jsonl > docs/generated/burst-table.rst

The burst cases (``burst: ...``) get a table of their own, with how long each took.
"""

from __future__ import print_function

import collections
import json
import sys

COLUMNS = ('sent', 'answered', 'timed_out', 'errors', 'closed', 'lost', 'duplicates')
HEADERS = ('case', 'Python', 'sent', 'answered', 'timed out', 'error answers / failed',
           'closed', 'lost', 'completed twice')
BURST_PREFIX = 'burst: '
BURST_COLUMNS = ('sent', 'answered', 'lost', 'duplicates', 'seconds')
BURST_HEADERS = ('burst', 'Python', 'sent', 'answered', 'lost', 'completed twice',
                 'seconds')


def read(label, path):
    rows = []
    with open(path) as report:
        for line in report:
            if line.strip():
                record = json.loads(line)
                record['errors'] = record.get('errors', 0) + record.get('failed', 0)
                rows.append((label, record))
    return rows


def main(arguments):
    bursts = '--bursts' in arguments
    headers, columns = (BURST_HEADERS, BURST_COLUMNS) if bursts else (HEADERS, COLUMNS)
    by_case = collections.OrderedDict()
    for argument in arguments:
        if argument == '--bursts':
            continue
        label, _, path = argument.partition('=')
        for python, record in read(label, path):
            if record['case'].startswith(BURST_PREFIX) == bursts:
                by_case.setdefault(record['case'], []).append((python, record))
    print('.. list-table::')
    print('   :header-rows: 1')
    print()
    print('   * - ' + '\n     - '.join(headers))
    for case, runs in sorted(by_case.items()):
        if bursts:
            case = case[len(BURST_PREFIX):]
        for python, record in runs:
            cells = [case, python] + [str(record.get(column, 0)) for column in columns]
            print('   * - ' + '\n     - '.join(cells))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
