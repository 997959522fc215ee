"""Sphinx directive that shows the differences from Toto 1.0.12 the differential tests accept.

    .. oracle-differences::

The list lives in ``tests/oracle_differences.py``, the one place the tests
read it from; this directive renders it when the documentation is built, so
the page and the tests never disagree.
"""

import importlib.util
import os

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE = os.path.join(ROOT, 'tests', 'oracle_differences.py')


def _load_list():
    spec = importlib.util.spec_from_file_location('_toto_oracle_differences', SOURCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class OracleDifferencesDirective(Directive):
    """``.. oracle-differences::``: every listed difference, sorted by case id."""

    def run(self):
        self.state.document.settings.record_dependencies.add(SOURCE)
        text = _load_list().render_rst()
        node = nodes.container()
        self.state.nested_parse(StringList(text.splitlines(), SOURCE), self.content_offset, node)
        return node.children


def setup(app):
    app.add_directive('oracle-differences', OracleDifferencesDirective)
    return {'parallel_read_safe': True, 'parallel_write_safe': True}
