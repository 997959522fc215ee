"""Summarise a py-spy ``--format raw`` profile as text, thread by thread.

    py-spy record --threads -f raw -o out.txt -- python -m benchmarks.profile_client zmq-thread
    python -m benchmarks.pyspy_summary out.txt --top 20

For each thread: its share of the samples, the functions where the samples
landed (own time) and the functions they passed through (total time).
"""

import argparse
import collections
import re
import sys

_FRAME = re.compile(r'^(?P<function>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$')


def _short(frame):
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match.group('file')
    for marker in ('site-packages/', 'lib/python3', '/work/main/'):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return '%s (%s)' % (match.group('function'), path)


def summarise(lines, top):
    threads = collections.defaultdict(lambda: {'samples': 0,
                                               'own': collections.Counter(),
                                               'total': collections.Counter()})
    grand = 0
    for line in lines:
        line = line.rstrip('\n')
        if not line:
            continue
        stack, _, count = line.rpartition(' ')
        try:
            count = int(count)
        except ValueError:
            continue
        frames = stack.split(';')
        thread = frames[0] if frames[0].startswith(('thread', 'process')) else '(all)'
        if thread != '(all)':
            frames = frames[1:]
            if frames and frames[0].startswith('thread'):
                thread, frames = frames[0], frames[1:]
        frames = [_short(f) for f in frames if f]
        entry = threads[thread]
        entry['samples'] += count
        grand += count
        if frames:
            entry['own'][frames[-1]] += count
            for frame in set(frames):
                entry['total'][frame] += count
    output = []
    for thread, entry in sorted(threads.items(), key=lambda item: -item[1]['samples']):
        samples = entry['samples']
        output.append('%s: %d samples (%.1f%% of all)' % (thread, samples,
                                                          100.0 * samples / max(grand, 1)))
        for title, counter in (('own', entry['own']), ('total', entry['total'])):
            output.append('  %s time:' % title)
            for frame, count in counter.most_common(top):
                output.append('    %5.1f%%  %s' % (100.0 * count / samples, frame))
    return '\n'.join(output)


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m benchmarks.pyspy_summary')
    parser.add_argument('path')
    parser.add_argument('--top', type=int, default=15)
    args = parser.parse_args(argv)
    with open(args.path) as raw:
        sys.stdout.write(summarise(raw, args.top) + '\n')


if __name__ == '__main__':
    main()
