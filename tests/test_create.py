"""toto-create, and the projects it makes from the simple and chat templates, served for real.

The template tests start the project's own totoserver.py (a TotoServer in processes of its
own, on a port the OS picks) and drive it with the project's client scripts or plain HTTP.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import py_compile
import re
import stat
import subprocess
import sys
import threading
import time

import pytest
from tornado.options import options

import toto._server_options  # noqa: F401 - defines the options the conf files set
import toto.dbconnection  # noqa: F401
import toto.events  # noqa: F401
import toto.methods.account.login
from toto._create import (ProjectError, available_templates, create_project, main,
                          template_directory)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'server_apps'))
import serverproc  # noqa: E402

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


# -- the projects, served ------------------------------------------------------------------


# Password hashes at a test cost (the default takes 0.3 s each on Python 2.7).
CHEAP_HASHES = '--password_hash_iterations=1000'

class ProjectServer(object):
    """A project's start-up script run as a TotoServer, ended (with its processes) on exit."""

    def __init__(self, project, script='totoserver.py', args=(), processes=1):
        self.project = project
        argv = [sys.executable, os.path.join(project, script), '--port=0',
                '--bind_host=127.0.0.1', '--nodaemon',
                '--pidfile=' + os.path.join(project, script + '.pid')] + list(args)
        log_path = os.path.join(project, script + '.%d.log' % id(self))
        self.server = serverproc.Server(script, argv, serverproc.child_env(), log_path, project)
        try:
            self.port = self.server.wait_started(processes)
        except BaseException:
            self.server.end()
            raise
        self.url = 'http://127.0.0.1:%d/' % self.port

    def call(self, method, parameters=None, timeout=20.0):
        return serverproc.call(self.port, method, parameters, timeout=timeout)

    def log(self):
        return self.server.output()

    def close(self):
        self.server.end()


@pytest.fixture
def serve_project():
    servers = []

    def start(*args, **kwargs):
        servers.append(ProjectServer(*args, **kwargs))
        return servers[-1]

    yield start
    for server in reversed(servers):
        server.close()


def run_script(project, script, url, stdin=b'', timeout=60):
    """Run one of the project's client scripts against ``url``: (exit status, output)."""
    env = dict(serverproc.child_env(), TOTO_URL=url)
    directory = os.path.dirname(os.path.join(project, script))
    process = subprocess.Popen([sys.executable, os.path.join(project, script)], cwd=directory,
                               env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    try:
        output = process.communicate(stdin)[0]
    finally:
        timer.cancel()
    return process.returncode, output.decode('utf-8', 'replace')


@pytest.mark.parametrize('hmac_enabled', [False, True], ids=['plain', 'hmac'])
def test_the_simple_project_keeps_accounts_and_counters(tmp_path, serve_project, hmac_enabled):
    project = create_project(str(tmp_path / 'simple'))
    server = serve_project(project, args=[CHEAP_HASHES] + (['--hmac_enabled'] if hmac_enabled
                                                           else []))
    status, output = run_script(project, 'scripts/test_server.py', server.url)
    assert status == 0, output + server.log()
    assert output.rstrip().endswith('Session storage ok')
    with open(os.path.join(project, 'toto_simple.json')) as stored:
        assert len(json.load(stored)['account']) == 2  # the json database, in a file

    # The interactive scripts: log in again, then count with the kept session.
    user_id = re.findall(r'new user: (\w+) password: (\w+)', output)[-1]
    status, output = run_script(project, 'scripts/login.py', server.url,
                                stdin=('%s\n%s\n' % user_id).encode('ascii'))
    assert status == 0 and "'session_id'" in output, output
    status, output = run_script(project, 'scripts/increment.py', server.url)
    assert status == 0 and "{'count': 1}" in output.replace("u'", "'"), output
    with open(os.path.join(project, 'scripts', 'session.conf')) as kept:
        session_conf = kept.read()
    assert ('key=' in session_conf) == hmac_enabled


def test_the_simple_projects_requests_are_refused_with_a_wrong_key(tmp_path, serve_project):
    project = create_project(str(tmp_path / 'simple'))
    server = serve_project(project, args=[CHEAP_HASHES, '--hmac_enabled'])
    status, output = run_script(project, 'scripts/create.py', server.url, stdin=b'eve\npw\n')
    assert status == 0, output + server.log()
    session_conf = os.path.join(project, 'scripts', 'session.conf')
    with open(session_conf) as kept:
        lines = [line for line in kept if not line.startswith('key=')]
    with open(session_conf, 'w') as kept:
        kept.write(''.join(lines) + "key='not-the-key'\n")
    status, output = run_script(project, 'scripts/increment.py', server.url)
    assert status != 0 and 'not signed with the session key' in output, output


class Receiver(object):
    """A receive_message long poll on a thread, by body or by URL path."""

    def __init__(self, port, by_path):
        self.answer = None
        self.done = threading.Event()
        self.by_path = by_path
        thread = threading.Thread(target=self._run, args=(port,))
        thread.daemon = True
        thread.start()

    def _run(self, port):
        try:
            if self.by_path:
                self.answer = serverproc.request(port, 'GET', '/receive_message', timeout=30)
            else:
                self.answer = serverproc.call(port, 'receive_message', timeout=30)
        except Exception as error:  # reported by the test
            self.answer = ('failed', repr(error))
        finally:
            self.done.set()


def post_until_received(poster, receivers, message, timeout=20.0):
    """Post ``message`` again and again until every receiver has an answer (its handler may
    not be registered yet when a post arrives); return the posts' answers."""
    answers = []
    deadline = time.time() + timeout
    while not all(receiver.done.is_set() for receiver in receivers):
        if time.time() > deadline:
            raise AssertionError('%d of %d receivers got nothing in %.0f s' % (
                sum(not receiver.done.is_set() for receiver in receivers), len(receivers),
                timeout))
        answers.append(poster.call('post_message', {'message': message}))
        for receiver in receivers:
            receiver.done.wait(0.1)
    return answers


def test_the_chat_project_delivers_to_listeners_of_both_processes(tmp_path, serve_project):
    project = create_project(str(tmp_path / 'chat'), 'chat')
    event_port = serverproc.free_port_pair()
    server = serve_project(project, args=['--event_port=%d' % event_port], processes=2)
    receivers = [Receiver(server.port, by_path) for by_path in (False, True) * 3]
    answers = post_until_received(server, receivers, 'welcome to Toto')
    assert answers[0] == (200, {'result': 'message sent!'})
    for receiver in receivers:
        assert receiver.answer == (200, {'result': {'message': 'welcome to Toto'}}), \
            server.log()
    assert 'Starting server 1' in server.log()


def test_chat_servers_and_the_event_server_share_messages(tmp_path, serve_project):
    project = create_project(str(tmp_path / 'chat'), 'chat')
    ports = dict((name, serverproc.free_port_pair()) for name in ('first', 'second', 'events'))
    address = 'tcp://127.0.0.1:%d'
    events = serve_project(project, 'eventserver.py', ['--event_port=%d' % ports['events'],
                                                       '--autoreload=false'])
    second = serve_project(project, args=['--processes=1',
                                          '--event_port=%d' % ports['second']])
    first = serve_project(project, args=[
        '--processes=1', '--event_port=%d' % ports['first'],
        '--remote_event_receivers=%s,%s' % (address % ports['second'],
                                            address % ports['events'])])
    receiver = Receiver(second.port, by_path=True)
    post_until_received(first, [receiver], 'across processes')
    assert receiver.answer == (200, {'result': {'message': 'across processes'}})
    serverproc.wait_until(lambda: 'message: across processes' in events.log(), 10.0,
                          message=lambda: 'the event server logged no message:\n' + events.log())
    # The event server serves no methods (event_mode='only').
    assert events.call('post_message', {'message': 'x'})[0] == 404
