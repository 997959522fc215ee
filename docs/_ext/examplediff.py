"""Sphinx directive that shows how two example files differ, as a unified diff.

    .. example-diff:: examples/webapp_py2.py examples/webapp_py3.py

Paths are relative to the repository root and are shown as written, unlike
``literalinclude``'s ``:diff:`` option, whose headers carry the absolute paths
of the machine that built the documentation.  The diff is made when the
documentation is built, so it always matches the files.
"""

import difflib
import io
import os

from docutils import nodes
from docutils.parsers.rst import Directive

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class ExampleDiffDirective(Directive):
    """``.. example-diff:: OLD NEW``: the unified diff from OLD to NEW."""

    required_arguments = 2

    def run(self):
        old_name, new_name = self.arguments
        texts = []
        for name in (old_name, new_name):
            path = os.path.join(ROOT, name)
            if not os.path.isfile(path):
                raise self.error('example-diff: no file %s' % name)
            self.state.document.settings.record_dependencies.add(path)
            with io.open(path, encoding='utf-8') as source:
                texts.append(source.read().splitlines(True))
        diff = ''.join(difflib.unified_diff(texts[0], texts[1], old_name, new_name))
        if not diff:
            raise self.error('example-diff: %s and %s are the same' % (old_name, new_name))
        block = nodes.literal_block(diff, diff)
        block['language'] = 'diff'
        return [block]


def setup(app):
    app.add_directive('example-diff', ExampleDiffDirective)
    return {'version': '1', 'parallel_read_safe': True, 'parallel_write_safe': True}
