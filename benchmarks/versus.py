"""Compare this checkout with an earlier commit, round by round, in one run.

    python -m benchmarks.versus 4b45b86                 # zmq-loop and zmq-thread
    python -m benchmarks.versus 4b45b86 --rounds 8 --only zmq-loop

Checks the commit out into a temporary git worktree, then runs ``benchmarks/run.py``
of each tree for one round at a time, alternating which goes first, so that both see
the same machine load.  Prints, for every measure, the median of each tree over the
rounds, the ratio new/old (median of the per-round ratios, with their range) and the
ratio ours/raw of each tree, whose raw client is the same in both.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='python -m benchmarks.versus',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('commit', help='the earlier commit (anything git rev-parse takes)')
    parser.add_argument('--rounds', type=int, default=6, help='rounds per tree (default 6)')
    parser.add_argument('--only', default='zmq-loop,zmq-thread',
                        help='measures, as for python -m benchmarks --only '
                             '(default zmq-loop,zmq-thread)')
    parser.add_argument('--json', help='also write the per-round results here')
    return parser.parse_args(argv)


def one_round(tree, only, directory, label, index):
    output = os.path.join(directory, '%s-%d.json' % (label, index))
    command = [sys.executable, os.path.join(tree, 'benchmarks', 'run.py'), '--rounds', '1',
               '--only', only, '--json', output, '--chart', '', '--quiet']
    subprocess.check_call(command, stdout=subprocess.DEVNULL, cwd=tree)
    with open(output) as stream:
        return json.load(stream)['measures']


def summarize(results):
    """``{measure: {'old': [...], 'new': [...], 'old_raw': [...], ...}}``."""
    table = {}
    for label in ('old', 'new'):
        for measures in results[label]:
            for key, row in measures.items():
                entry = table.setdefault(key, {'title': row['title'].strip(),
                                               'unit': row['unit'],
                                               'higher': row['higher_is_better']})
                entry.setdefault(label, []).append(row['ours'])
                if row.get('raw') is not None:
                    entry.setdefault(label + '_raw', []).append(row['raw'])
    return table


def format_table(table):
    lines = ['%-48s %-8s %10s %10s %8s %13s %9s %9s'
             % ('measure', 'unit', 'old', 'new', 'new/old', 'round range', 'old/raw',
                'new/raw')]
    for entry in table.values():
        old, new = entry.get('old', []), entry.get('new', [])
        if not old or not new:
            continue
        ratios = [n / o for o, n in zip(old, new) if o]
        cells = [entry['title'][:48], entry['unit'], '%10.1f' % statistics.median(old),
                 '%10.1f' % statistics.median(new), '%8.2f' % statistics.median(ratios),
                 '%6.2f-%-6.2f' % (min(ratios), max(ratios))]
        for label in ('old', 'new'):
            raw = entry.get(label + '_raw')
            ours = entry[label]
            cells.append('%9.2f' % statistics.median([a / b for a, b in zip(ours, raw)])
                         if raw else '%9s' % '-')
        lines.append('%-48s %-8s %s %s %s %s %s %s' % tuple(cells))
    lines.append('new/old above 1 is better for calls/s, below 1 for us CPU and ms.')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    directory = tempfile.mkdtemp(prefix='toto-versus-')
    old_tree = os.path.join(directory, 'old')
    subprocess.check_call(['git', 'worktree', 'add', '--detach', old_tree, args.commit],
                          cwd=ROOT, stdout=subprocess.DEVNULL)
    results = {'old': [], 'new': []}
    try:
        for index in range(args.rounds):
            order = [('old', old_tree), ('new', ROOT)]
            if index % 2:
                order.reverse()
            for label, tree in order:
                sys.stderr.write('round %d: %s\n' % (index + 1, label))
                results[label].append(one_round(tree, args.only, directory, label, index))
    finally:
        subprocess.call(['git', 'worktree', 'remove', '--force', old_tree], cwd=ROOT)
        shutil.rmtree(directory, ignore_errors=True)
    table = summarize(results)
    print('this checkout against %s, %d rounds each, alternating' % (args.commit, args.rounds))
    print(format_table(table))
    if args.json:
        with open(args.json, 'w') as stream:
            json.dump({'commit': args.commit, 'rounds': results}, stream, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
