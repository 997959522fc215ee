"""Sphinx directive that documents toto's ``tornado.options`` from the code.

The option tables in the documentation are built at build time from the
definitions themselves, so a renamed option, a changed default or a new help
text shows up without anyone editing the pages::

    .. toto-options:: worker service

lists every option whose ``define`` (through ``safe_define``) was given
``group='worker service'``, in the order they are defined, with its type,
default and help text, as a two-column table.  A group with no options is an error, so renaming a
group cannot silently empty a table.
"""

import re

from docutils import nodes
from docutils.parsers.rst import Directive, directives

# Importing these modules defines every option the package has.
OPTION_MODULES = (
    'toto.service',
    'toto.workerconnection',
    'toto.worker',
    'toto.httpworker',
    'toto.cli',
    'toto.server',
)

_MIB = 1024 * 1024
# Option names mentioned in help texts, shown as code.
_OPTION_MENTION = re.compile(r'(--[a-z][a-z0-9_]*)')


def _toto_options():
    import importlib

    from tornado.options import options

    for name in OPTION_MODULES:
        importlib.import_module(name)
    return list(options._options.values())


def _default_nodes(option):
    default = option.default
    if default is None:
        return [nodes.Text('not set')]
    text = repr(default)
    found = [nodes.Text('default '), nodes.literal(text, text)]
    if option.type is int and default >= _MIB and default % _MIB == 0:
        found.append(nodes.Text(' (%d MiB)' % (default // _MIB)))
    return found


def _type_text(option):
    text = option.type.__name__ if option.type is not None else 'str'
    if option.multiple:
        text = 'list of ' + text
    return text


def _paragraph(*children):
    paragraph = nodes.paragraph()
    # Help texts are written as plain text: keep "--name" and quotes as
    # they are instead of turning them into dashes and curly quotes.
    paragraph['support_smartquotes'] = False
    paragraph.extend(children)
    return paragraph


def _help_nodes(text):
    found = []
    for index, piece in enumerate(_OPTION_MENTION.split(text or '')):
        if index % 2:
            found.append(nodes.literal(piece, piece))
        elif piece:
            found.append(nodes.Text(piece))
    return found


def _row(cells):
    """A table row; each cell is a node or a list of nodes."""
    row = nodes.row()
    for cell in cells:
        entry = nodes.entry()
        entry.extend(cell if isinstance(cell, list) else [cell])
        row.append(entry)
    return row


class TotoOptionsDirective(Directive):
    """``.. toto-options:: GROUP``: a table of the options of one group."""

    required_arguments = 1
    final_argument_whitespace = True
    option_spec = {'class': directives.class_option}

    def run(self):
        group = self.arguments[0].strip()
        found = [option for option in _toto_options() if option.group_name == group]
        if not found:
            raise self.error('no tornado option is defined with group=%r' % (group,))

        # Two columns, so that long defaults such as ipc:// paths fit.
        table = nodes.table(classes=['toto-options', 'colwidths-given']
                            + self.options.get('class', []))
        tgroup = nodes.tgroup(cols=2)
        table.append(tgroup)
        for width in (42, 58):
            tgroup.append(nodes.colspec(colwidth=width))

        head = nodes.thead()
        head.append(_row([_paragraph(nodes.Text(title))
                          for title in ('Option, type and default', 'Meaning')]))
        tgroup.append(head)

        body = nodes.tbody()
        for option in found:
            name = '--%s' % option.name
            if option.metavar:
                name += '=%s' % option.metavar
            body.append(_row([
                [_paragraph(nodes.literal(name, name)),
                 _paragraph(nodes.Text(_type_text(option) + ', '), *_default_nodes(option))],
                [_paragraph(*_help_nodes(option.help))],
            ]))
        tgroup.append(body)
        return [table]


def setup(app):
    app.add_directive('toto-options', TotoOptionsDirective)
    return {'version': '1', 'parallel_read_safe': True, 'parallel_write_safe': True}
