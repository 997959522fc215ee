"""The ``toto-create`` command: start a new Toto project from one of the templates.

::

    toto-create                    # lists the templates
    toto-create myproject          # the "simple" template: accounts, sessions, a counter
    toto-create mychat chat        # the "chat" template: events and long polls

The templates are package data under ``toto/templates/toto/<name>/``; the project directory
must not exist yet. From code: ``create_project('myproject', 'chat')``.
"""

from __future__ import absolute_import, division, print_function

import logging
import os
import shutil
import stat
import sys

__all__ = ['DEFAULT_TEMPLATE', 'ProjectError', 'available_templates', 'create_project',
           'main', 'template_directory']

logger = logging.getLogger('toto.create')

#: The template used when none is named.
DEFAULT_TEMPLATE = 'simple'

_TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'templates', 'toto')
# Left behind by running a template in place, never part of a project.
_IGNORED = shutil.ignore_patterns('*.pyc', '*.pyo', '__pycache__')
_EXECUTABLE = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH

_USAGE = """usage: toto-create <path> [template]

Creates a new Toto project in <path> (which must not exist yet) from a template;
the default template is "%s".

Templates:
    %s
"""


class ProjectError(ValueError):
    """The project cannot be created: the path exists, or there is no such template."""


def template_directory():
    """The directory holding one directory per template."""
    return _TEMPLATES


def available_templates():
    """The template names, sorted."""
    return sorted(name for name in os.listdir(_TEMPLATES)
                  if os.path.isdir(os.path.join(_TEMPLATES, name)))


def create_project(path, template=DEFAULT_TEMPLATE):
    """Copy ``template`` to the new directory ``path``; returns its absolute path.

    Raises :class:`ProjectError` when ``path`` exists or ``template`` is not a template.
    """
    target = os.path.abspath(path)
    if template not in available_templates():
        raise ProjectError('there is no template %r; the templates are: %s'
                           % (template, ', '.join(available_templates())))
    if os.path.lexists(target):
        raise ProjectError('%s already exists; give the path of a new directory' % target)
    shutil.copytree(os.path.join(_TEMPLATES, template), target, ignore=_IGNORED)
    _mark_scripts_executable(target)
    logger.debug('created %s from the %s template', target, template)
    return target


def _mark_scripts_executable(root):
    # Installing from a wheel or an sdist may drop the executable bits of package data.
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, 'rb') as script:
                if script.read(2) != b'#!':
                    continue
            mode = os.stat(path).st_mode
            os.chmod(path, mode | ((mode & 0o444) >> 2 & _EXECUTABLE))


def main(argv=None):
    """The console script: ``toto-create <path> [template]``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ('-h', '--help'):
        sys.stdout.write(_USAGE % (DEFAULT_TEMPLATE, '\n    '.join(available_templates())))
        return 0
    if len(args) > 2 or args[0].startswith('-'):
        sys.stderr.write(_USAGE % (DEFAULT_TEMPLATE, '\n    '.join(available_templates())))
        return 2
    template = args[1] if len(args) > 1 else DEFAULT_TEMPLATE
    try:
        target = create_project(args[0], template)
    except ProjectError as error:
        sys.stderr.write('toto-create: %s\n' % error)
        return 2
    except (IOError, OSError) as error:
        sys.stderr.write('toto-create: cannot create %s: %s\n' % (args[0], error))
        return 1
    sys.stdout.write('Created a new Toto project in %s from the "%s" template.\n'
                     % (target, template))
    return 0


if __name__ == '__main__':
    sys.exit(main())
