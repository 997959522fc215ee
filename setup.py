"""Packaging for toto-compat: the Toto worker RPC layer for Python 2.7 and 3."""

import io
import os
import re

from setuptools import find_packages, setup

HERE = os.path.abspath(os.path.dirname(__file__))


def _read(*parts):
    with io.open(os.path.join(HERE, *parts), encoding='utf-8') as source:
        return source.read()


def _version():
    # The version lives in toto/__init__.py only; read it as text so that
    # building does not import the package (and its dependencies).
    match = re.search(r"^version = '([^']+)'", _read('toto', '__init__.py'), re.M)
    return match.group(1)


setup(
    name='toto-compat',
    version=_version(),
    description='The Toto web framework and worker RPC layer for Python 2.7 '
                'and Python 3, Tornado 5.1 and 6',
    long_description=_read('README.rst'),
    long_description_content_type='text/x-rst',
    license='MIT',
    packages=find_packages(include=['toto', 'toto.*']),
    # The type stubs and the PEP 561 marker that tells type checkers to use them.
    package_data={'toto': ['py.typed', '*.pyi',
                           # toto-create's project templates
                           'templates/startup/*',
                           'templates/toto/*/*', 'templates/toto/*/*/*',
                           'templates/toto/*/*/*/*']},
    python_requires='>=2.7, !=3.0.*, !=3.1.*, !=3.2.*, !=3.3.*, !=3.4.*, '
                    '!=3.5.*, !=3.6.*, !=3.7.*',
    install_requires=[
        'six>=1.10',
        'tornado>=5.1,<6; python_version<"3"',
        'tornado>=6.0; python_version>="3"',
        'pyzmq>=19.0,<20; python_version<"3"',
        'pyzmq>=19.0; python_version>="3"',
        'futures>=3.0; python_version<"3"',
    ],
    entry_points={
        'console_scripts': [
            'toto-worker = toto.cli:worker_main',
            'toto-invoke = toto.cli:invoke_main',
            'toto-create = toto._create:main',
        ],
    },
    extras_require={
        'test': [
            'pytest',
            'pytest-timeout',
            # tox.ini runs the tests in several processes (pytest -n)
            'pytest-xdist',
            'msgpack>=1.0',
            # tests/test_clientsessioncache.py (the clientcache extra)
            'pycryptodome>=3.9',
            # tests/test_worker_metrics.py serves and scrapes the metrics.
            'prometheus_client>=0.12,<0.13; python_version<"3"',
            'prometheus_client>=0.12; python_version>="3"',
            # the database drivers' tests (tests/test_db_*.py): the four extras below
            'pymongo==3.13.0; python_version<"3"',
            'pymongo>=4.4; python_version>="3"',
            'redis==3.5.3; python_version<"3"',
            'redis>=4.1; python_version>="3"',
            'PyMySQL==0.10.1; python_version<"3"',
            'PyMySQL>=1.0; python_version>="3"',
            'psycopg2-binary==2.8.6; python_version<"3"',
            'psycopg2-binary>=2.9; python_version>="3"',
        ],
        # The client libraries of the database drivers (--database=...). On Python 2.7
        # the last release of each that supports it, exactly; pymongo 3.13 is also the
        # last with pymongo 2's collection methods, which 1.0.12 applications call.
        'mongodb': ['pymongo==3.13.0; python_version<"3"', 'pymongo>=4.4; python_version>="3"'],
        'redis': ['redis==3.5.3; python_version<"3"', 'redis>=4.1; python_version>="3"'],
        'mysql': ['PyMySQL==0.10.1; python_version<"3"', 'PyMySQL>=1.0; python_version>="3"'],
        'postgres': ['psycopg2-binary==2.8.6; python_version<"3"',
                     'psycopg2-binary>=2.9; python_version>="3"'],
        # ZeroMQ CURVE needs a libzmq built with it, which pyzmq's binary
        # wheels are (on every supported Python); nothing more to install.
        # The extra lets requirements say that they rely on CURVE.
        'curve': [],
        # Tornado's curl HTTP client: configure_client('curl') or
        # --worker_http_client=curl.
        'curl': ['pycurl>=7.43'],
        # toto.clientsessioncache.AESCipher (pycryptodomex works as well).
        'clientcache': ['pycryptodome>=3.9'],
        # --worker_serialization_module=msgpack (msgpack has dumps/loads).
        'msgpack': ['msgpack>=1.0'],
        # The worker service's Prometheus endpoint (--metrics_port). 0.12 is
        # the last prometheus_client release that installs on Python 2.7.
        'metrics': [
            'prometheus_client>=0.12,<0.13; python_version<"3"',
            'prometheus_client>=0.12; python_version>="3"',
        ],
    },
    classifiers=[
        'Development Status :: 4 - Beta',
        'Framework :: Tornado',
        'Intended Audience :: Developers',
        'License :: OSI Approved :: MIT License',
        'Programming Language :: Python :: 2',
        'Programming Language :: Python :: 2.7',
        'Programming Language :: Python :: 3',
        'Programming Language :: Python :: 3.8',
        'Programming Language :: Python :: 3.11',
        'Programming Language :: Python :: 3.13',
        'Topic :: System :: Distributed Computing',
    ],
)
