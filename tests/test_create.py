"""toto-create: new projects from the simple and chat templates (the files, not the servers)."""

from __future__ import absolute_import, division, print_function

import os
import py_compile
import re
import stat
import subprocess
import sys

import pytest
from tornado.options import options

import toto._server_options  # noqa: F401 - defines the options the conf files set
import toto.dbconnection  # noqa: F401
import toto.events  # noqa: F401
from toto._create import (ProjectError, available_templates, create_project, main,
                          template_directory)

TOTO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(toto.__file__)))

# The files of Toto 1.0.12's templates (templates/toto/<name>/), which projects keep.
SIMPLE_FILES = set([
    'totoserver.py', 'toto.conf', 'nginx.conf', 'methods/__init__.py',
    'methods/increment.py', 'methods/account/__init__.py', 'scripts/benchmark.py',
    'scripts/create.py', 'scripts/increment.py', 'scripts/login.py', 'scripts/request.py',
    'scripts/test_server.py',
])
CHAT_FILES = set([
    'totoserver.py', 'toto.conf', 'eventserver.py', 'event.conf', 'setup_events.py',
    'send_chat.py', 'receive_chat.py', 'chat/__init__.py', 'chat/post_message.py',
    'chat/receive_message.py',
])
SCRIPTS = {
    'simple': ['totoserver.py', 'scripts/benchmark.py', 'scripts/create.py',
               'scripts/increment.py', 'scripts/login.py', 'scripts/test_server.py'],
    'chat': ['totoserver.py', 'eventserver.py', 'send_chat.py', 'receive_chat.py'],
}


def files_under(root):
    found = set()
    for directory, _, names in os.walk(root):
        for name in names:
            found.add(os.path.relpath(os.path.join(directory, name), root).replace(os.sep, '/'))
    return found


def run_toto_create(*args, **kwargs):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [TOTO_ROOT] + ([os.environ['PYTHONPATH']] if os.environ.get('PYTHONPATH') else [])))
    process = subprocess.Popen([sys.executable, '-m', 'toto._create'] + list(args), env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               cwd=kwargs.get('cwd'))
    output, errors = process.communicate()
    return process.returncode, output.decode('utf-8'), errors.decode('utf-8')


def conf_values(path):
    # A conf file is Python that sets option names, as tornado's parse_config_file reads it.
    values = {'__file__': path}
    with open(path) as conf:
        exec(compile(conf.read(), path, 'exec'), values)
    return dict((name, value) for name, value in values.items()
                if not name.startswith('__'))


# -- the command -----------------------------------------------------------------------

def test_without_arguments_it_lists_the_templates(capsys):
    assert main([]) == 0
    output = capsys.readouterr().out
    assert 'toto-create <path> [template]' in output
    assert re.search(r'^\s+chat\s*$', output, re.M) and re.search(r'^\s+simple\s*$', output, re.M)
    assert available_templates() == ['chat', 'simple']


def test_it_creates_the_simple_project_by_default(tmp_path):
    target = str(tmp_path / 'myproject')
    status, output, errors = run_toto_create(target)
    assert (status, errors) == (0, '')
    assert target in output and '"simple"' in output
    assert files_under(target) == SIMPLE_FILES


def test_it_creates_the_chat_project(tmp_path):
    target = str(tmp_path / 'mychat')
    assert run_toto_create(target, 'chat')[0] == 0
    assert files_under(target) == CHAT_FILES


def test_an_existing_path_is_refused_with_status_2_and_left_alone(tmp_path):
    existing = tmp_path / 'taken'
    existing.mkdir()
    (existing / 'mine.txt').write_text(u'keep me')
    status, output, errors = run_toto_create(str(existing))
    assert status == 2
    assert 'already exists' in errors and str(existing) in errors
    assert os.listdir(str(existing)) == ['mine.txt']
    with pytest.raises(ProjectError):
        create_project(str(existing))


def test_an_unknown_template_or_extra_arguments_give_status_2(tmp_path):
    status, _, errors = run_toto_create(str(tmp_path / 'p'), 'nosuch')
    assert status == 2 and "no template 'nosuch'" in errors and 'chat, simple' in errors
    assert not (tmp_path / 'p').exists()
    assert run_toto_create(str(tmp_path / 'p'), 'simple', 'extra')[0] == 2
    assert run_toto_create('--bogus')[0] == 2


def test_a_relative_path_is_made_in_the_current_directory(tmp_path):
    status, output, _ = run_toto_create('relative', cwd=str(tmp_path))
    assert status == 0
    assert (tmp_path / 'relative' / 'totoserver.py').exists()


@pytest.mark.parametrize('template', ['simple', 'chat'])
def test_scripts_are_executable_and_compile(tmp_path, template):
    target = create_project(str(tmp_path / template), template)
    for script in SCRIPTS[template]:
        mode = os.stat(os.path.join(target, script)).st_mode
        assert mode & stat.S_IXUSR, script
    for name in files_under(target):
        if name.endswith('.py'):
            py_compile.compile(os.path.join(target, name), doraise=True,
                               cfile=str(tmp_path / 'compiled.pyc'))
    assert not any('__pycache__' in name or name.endswith('.pyc')
                   for name in files_under(target))


def test_the_init_d_script_ships_with_the_templates():
    init_d = os.path.join(os.path.dirname(template_directory()), 'startup', 'init.d')
    with open(init_d) as script:
        text = script.read()
    assert text.startswith('#!/bin/sh') and 'TOTO_PROCESS --start' in text


# -- the conf files ----------------------------------------------------------------------

def test_every_conf_name_is_an_option_of_this_package():
    defined = options.as_dict()
    for template, conf in (('simple', 'toto.conf'), ('chat', 'toto.conf'),
                           ('chat', 'event.conf')):
        values = conf_values(os.path.join(template_directory(), template, conf))
        assert values and set(values) <= set(defined), (template, conf)


def test_the_simple_project_runs_on_the_json_database_with_1_0_12s_option_names():
    values = conf_values(os.path.join(template_directory(), 'simple', 'toto.conf'))
    assert values == {'port': 8888, 'method_module': 'methods', 'database': 'json',
                      'db_host': 'toto_simple.json', 'db_port': 1,
                      'mongodb_database': 'toto_simple'}


def test_the_chat_confs_keep_1_0_12s_settings():
    chat = conf_values(os.path.join(template_directory(), 'chat', 'toto.conf'))
    assert chat == {'method_module': 'chat', 'database': 'none', 'processes': 2,
                    'event_mode': 'on', 'debug': True, 'daemon': 'start'}
    event = conf_values(os.path.join(template_directory(), 'chat', 'event.conf'))
    assert event == {'database': 'none', 'processes': 1, 'event_init_module': 'setup_events',
                     'port': 9999, 'event_port': 8787, 'event_mode': 'only',
                     'method_module': 'chat', 'autoreload': True, 'pidfile': 'event.pid',
                     'daemon': 'start'}
