"""Summaries of the rounds: the table, the JSON file and the chart."""

import json
import math
import os
import statistics


class Row(object):
    """One measure: per-round values for toto ("ours") and for the baseline.

    ``target`` is ``(kind, number)`` with kind one of ``ratio>=``, ``ratio<=``
    (ours/raw), ``ours<`` or ``ours==``; or None for a measure shown for
    information only.  ``higher`` tells whether a bigger value is better.
    """

    def __init__(self, key, title, unit, ours, raw=None, target=None, higher=True,
                 group=None, short=None, note='', extra=None):
        self.key = key
        self.short = short
        self.title = title
        self.unit = unit
        self.ours = [float(v) for v in ours]
        self.raw = None if raw is None else [float(v) for v in raw]
        self.target = target
        self.higher = higher
        self.group = group
        self.note = note
        self.extra = extra or {}

    def summary(self):
        ours = statistics.median(self.ours)
        raw = statistics.median(self.raw) if self.raw else None
        ratio_of_medians = ours / raw if raw else None
        round_ratios = None
        ratio = ratio_of_medians
        if self.raw and len(self.raw) == len(self.ours) and all(self.raw):
            # Each round's two numbers were taken back to back: the median of
            # the per-round ratios shrugs off load that comes and goes.
            round_ratios = [o / r for o, r in zip(self.ours, self.raw)]
            ratio = statistics.median(round_ratios)
        return {
            'title': self.title,
            'unit': self.unit,
            'group': self.group,
            'short': self.short,
            'higher_is_better': self.higher,
            'ours': ours,
            'ours_min': min(self.ours),
            'ours_max': max(self.ours),
            'raw': raw,
            'raw_min': min(self.raw) if self.raw else None,
            'raw_max': max(self.raw) if self.raw else None,
            'ratio': ratio,
            'ratio_of_medians': ratio_of_medians,
            'round_ratios': round_ratios,
            'target': target_text(self.target),
            'meets_target': meets(self.target, ours, ratio),
            'rounds': {'ours': self.ours, 'raw': self.raw},
            'note': self.note,
            'extra': self.extra,
        }


def target_text(target):
    if target is None:
        return ''
    kind, number = target
    return {'ratio>=': '>= %.3gx raw', 'ratio<=': '<= %.3gx raw', 'ours<': '< %.3g',
            'ours<=': '<= %.3g', 'ours>=': '>= %.3g', 'ours==': '== %.3g'}[kind] % number


def meets(target, ours, ratio):
    if target is None:
        return None
    kind, number = target
    if kind == 'ratio>=':
        return ratio is not None and ratio >= number
    if kind == 'ratio<=':
        return ratio is not None and ratio <= number
    if kind == 'ours<':
        return ours < number
    if kind == 'ours<=':
        return ours <= number
    if kind == 'ours>=':
        return ours >= number
    if kind == 'ours==':
        return ours == number
    raise ValueError(kind)


def percentile(values, fraction):
    """The nearest-rank percentile of ``values`` (0 < fraction <= 1)."""
    ordered = sorted(values)
    index = max(0, int(math.ceil(fraction * len(ordered))) - 1)
    return ordered[index]


# -- the table ---------------------------------------------------------------------------

def _number(value):
    if value is None:
        return '-'
    if value == 0:
        return '0'
    magnitude = abs(value)
    if magnitude >= 1000:
        return '{:,.0f}'.format(value)
    if magnitude >= 100:
        return '{:.0f}'.format(value)
    if magnitude >= 10:
        return '{:.1f}'.format(value)
    if magnitude >= 1:
        return '{:.2f}'.format(value)
    return '{:.3g}'.format(value)


def _span(values, form=None):
    if not values or len(values) < 2:
        return '-'
    low, high = min(values), max(values)
    if form:
        return '%s-%s' % (form % low, form % high)
    return '%s-%s' % (_number(low), _number(high))


COLUMNS = ('measure', 'unit', 'ours', 'raw', 'ours/raw', 'target', 'ok',
           'ours min-max', 'raw min-max', 'ratio min-max')


def table_rows(measures, baseline='raw'):
    rows = []
    for summary in measures.values():
        ok = summary['meets_target']
        rows.append((summary['title'], summary['unit'], _number(summary['ours']),
                     _number(summary['raw']),
                     '-' if summary['ratio'] is None else '%.2f' % summary['ratio'],
                     (summary['target'] or '-').replace('x raw', 'x ' + baseline),
                     '-' if ok is None else ('yes' if ok else 'NO'),
                     _span(summary['rounds']['ours']),
                     _span(summary['rounds']['raw']),
                     _span(summary['round_ratios'], '%.2f')))
    return rows


def _columns(labels):
    ours, raw = labels
    return tuple(column.replace('ours', ours).replace('raw', raw) for column in COLUMNS)


def format_table(measures, labels=('ours', 'raw')):
    """The table as text; ``labels`` name the two columns compared."""
    columns = _columns(labels)
    rows = [columns] + table_rows(measures, labels[1])
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = []
    for index, row in enumerate(rows):
        cells = []
        for i, cell in enumerate(row):
            cells.append(cell.ljust(widths[i]) if i in (0, 1, 5, 6) else cell.rjust(widths[i]))
        lines.append('  '.join(cells).rstrip())
        if index == 0:
            lines.append('  '.join('-' * w for w in widths))
    return '\n'.join(lines)


def format_markdown(measures, labels=('ours', 'raw')):
    columns = _columns(labels)
    lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
    for row in table_rows(measures, labels[1]):
        lines.append('| ' + ' | '.join(row) + ' |')
    return '\n'.join(lines)


# -- files -------------------------------------------------------------------------------

def write_json(path, document):
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory)
    with open(path, 'w') as output:
        json.dump(document, output, indent=2, sort_keys=True)
        output.write('\n')


PANELS = (('zmq-throughput', 'zmq throughput', 'calls per second (higher is better)'),
          ('http-throughput', 'http throughput', 'calls per second (higher is better)'),
          ('zmq-latency', 'zmq latency', 'microseconds per call (lower is better)'),
          ('http-latency', 'http latency', 'microseconds per call (lower is better)'),
          ('zmq-cpu', 'zmq client CPU time per call (throughput runs)',
           'CPU microseconds per call, all threads (lower is better)'),
          ('http-cpu', 'http client CPU time per call (throughput runs)',
           'CPU microseconds per call, all threads (lower is better)'))


def write_chart(path, measures):
    """Draw throughput and latency bars, ours vs raw; False without matplotlib."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    shown = [(title, label, [s for s in measures.values()
                             if s['group'] == group and s['raw'] is not None])
             for group, title, label in PANELS]
    shown = [panel for panel in shown if panel[2]]
    if not shown:
        return False
    columns = min(2, len(shown))
    lines = (len(shown) + columns - 1) // columns
    figure, axes = plt.subplots(lines, columns, figsize=(6 * columns, 4.2 * lines),
                                squeeze=False)
    for axis in axes.flat[len(shown):]:
        axis.set_visible(False)
    for axis, (title, label, summaries) in zip(axes.flat, shown):
        positions = range(len(summaries))
        width = 0.38
        for offset, who, color in ((-width / 2, 'ours', '#1f77b4'),
                                   (width / 2, 'raw', '#aaaaaa')):
            values = [s[who] for s in summaries]
            errors = [[s[who] - s[who + '_min'] for s in summaries],
                      [s[who + '_max'] - s[who] for s in summaries]]
            bars = axis.bar([p + offset for p in positions], values, width, yerr=errors,
                            capsize=3, color=color,
                            label='toto' if who == 'ours' else 'raw baseline')
            for bar, value in zip(bars, values):
                # Inside the bar, at its foot: clear of the min-max whiskers.
                axis.annotate(_number(value), (bar.get_x() + bar.get_width() / 2, 0),
                              ha='center', va='bottom', fontsize=7, rotation=90,
                              color='white' if who == 'ours' else 'black',
                              xytext=(0, 3), textcoords='offset points')
        axis.set_xticks(list(positions))
        axis.set_xticklabels([s.get('short') or s['title'] for s in summaries], fontsize=8)
        axis.set_ylabel(label, fontsize=8)
        axis.set_title(title)
        axis.legend(fontsize=8)
        axis.grid(axis='y', alpha=0.3)
        axis.margins(y=0.12)
    figure.suptitle('toto worker connections vs raw clients '
                    '(median of rounds, whiskers: min-max)', fontsize=10)
    figure.tight_layout()
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
