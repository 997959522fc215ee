"""Build the distributions and test the wheel as a user installs it (tox -e package).

    python .ci/check_package.py WORK_DIR [PYTEST_ARGS...]

1. ``python -m build`` makes the sdist and the wheel in WORK_DIR/dist; the
   wheel must be the universal one (py2.py3-none-any) with the type stubs,
   and the sdist must also carry the changelog, examples, tests and docs;
2. ``twine check --strict`` checks both;
3. a fresh virtual environment (WORK_DIR/venv) gets the wheel -- not the
   source tree -- with the ``test`` extra;
4. tests/ and examples/ are copied to WORK_DIR/suite, without the package,
   and pytest runs there with that environment's Python, after checking that
   ``import toto`` finds the installed copy and that its version is the
   installed metadata's and the newest CHANGELOG.rst entry's. Without PYTEST_ARGS the run
   takes the tests of what the source tree could hide: console scripts,
   examples, stubs and package data (DEFAULT_PYTEST_ARGS).

The Python 2 <-> 3 tests of the copy use TOTO_PYTHON2 (tox sets it to the
py27peer environment's interpreter) as they do in the other environments.
Exits with the first failing step's status.
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The Python environments of tox.ini already run the whole suite against the
# installed wheel; here only what a copy of the tests outside the source tree
# can show more: the console scripts, the examples, the stubs and the
# package data.
DEFAULT_PYTEST_ARGS = ['tests/test_examples.py', 'tests/test_worker_apps.py',
                       'tests/test_worker_control.py', 'tests/test_instance.py',
                       'tests/test_exceptions_options.py']
# What the wheel must hold besides the modules.
TYPING_FILES = ['toto/py.typed', 'toto/workerconnection.pyi', 'toto/zmqworkerconnection.pyi',
                'toto/httpworkerconnection.pyi', 'toto/exceptions.pyi', 'toto/invocation.pyi']
# What the sdist must hold besides the package (MANIFEST.in).
SDIST_FILES = TYPING_FILES + ['CHANGELOG.rst', 'examples/webapp_py2.py', 'examples/webapp_py3.py',
                              'examples/methods/greet.py', 'tests/conftest.py', 'docs/conf.py']


def step(title):
    print('\n== package: %s' % title, flush=True)


def run(argv, **kwargs):
    print('$ ' + ' '.join(argv), flush=True)
    status = subprocess.call(argv, **kwargs)
    if status:
        print('package: %s exited with status %d' % (argv[0], status), flush=True)
        sys.exit(status)


def fresh(path):
    shutil.rmtree(path, ignore_errors=True)
    return path


def main(argv):
    if not argv:
        sys.exit(__doc__)
    work = os.path.abspath(argv[0])
    pytest_args = argv[1:] or DEFAULT_PYTEST_ARGS
    dist = fresh(os.path.join(work, 'dist'))

    step('build the sdist and the wheel')
    run([sys.executable, '-m', 'build', '--sdist', '--wheel', '--outdir', dist, ROOT])
    wheels = glob.glob(os.path.join(dist, '*.whl'))
    sdists = glob.glob(os.path.join(dist, '*.tar.gz'))
    if len(wheels) != 1 or len(sdists) != 1:
        sys.exit('package: expected one wheel and one sdist, found %s' % os.listdir(dist))
    wheel = wheels[0]
    if not wheel.endswith('-py2.py3-none-any.whl'):
        sys.exit('package: %s is not a universal (py2.py3-none-any) wheel' % wheel)
    with zipfile.ZipFile(wheel) as archive:
        missing = sorted(set(TYPING_FILES) - set(archive.namelist()))
    if missing:
        sys.exit('package: the wheel lacks %s' % ', '.join(missing))
    with tarfile.open(sdists[0]) as archive:
        names = set(name.split('/', 1)[-1] for name in archive.getnames())
    missing = sorted(set(SDIST_FILES) - names)
    if missing:
        sys.exit('package: the sdist lacks %s' % ', '.join(missing))
    print('built %s and %s' % (os.path.basename(sdists[0]), os.path.basename(wheel)))

    step('twine check')
    run([sys.executable, '-m', 'twine', 'check', '--strict', wheel, sdists[0]])

    step('install the wheel into a fresh virtual environment')
    venv = fresh(os.path.join(work, 'venv'))
    run([sys.executable, '-m', 'venv', venv])
    python = os.path.join(venv, 'bin', 'python')
    run([python, '-m', 'pip', 'install', '--quiet', '--disable-pip-version-check',
         wheel + '[test]'])

    step('run the tests against the installed wheel')
    suite = fresh(os.path.join(work, 'suite'))
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '.pytest_cache')
    for name in ('tests', 'examples'):
        shutil.copytree(os.path.join(ROOT, name), os.path.join(suite, name), ignore=ignore)
    shutil.copy(os.path.join(ROOT, 'pytest.ini'), suite)
    # The copy has no toto/ of its own: toto must come from the virtual environment.
    location = subprocess.check_output(
        [python, '-c', 'import toto; print(toto.__file__)'], cwd=suite,
        universal_newlines=True).strip()
    print('toto is imported from %s' % location)
    if not location.startswith(venv + os.sep):
        sys.exit('package: toto came from %s, not from the installed wheel' % location)
    # One version everywhere: toto.version is what setup.py and docs/conf.py
    # read; the installed metadata and the changelog's newest entry must agree.
    versions = subprocess.check_output(
        [python, '-c', 'import importlib.metadata as m, toto; '
                       'print(toto.version, m.version("toto-compat"))'],
        cwd=suite, universal_newlines=True).split()
    with open(os.path.join(ROOT, 'CHANGELOG.rst')) as changelog:
        newest = re.search(r'^(\d+\.\d+\S*)\n---', changelog.read(), re.M).group(1)
    print('toto.version %s, installed metadata %s, CHANGELOG.rst %s'
          % (versions[0], versions[1], newest))
    if len(set(versions + [newest])) != 1:
        sys.exit('package: the versions differ')
    run([python, '-m', 'pytest', '-p', 'no:cacheprovider'] + pytest_args, cwd=suite)


if __name__ == '__main__':
    main(sys.argv[1:])
