"""Sphinx configuration for the toto-compat documentation."""

import os
import re
import sys

# Document the package from this checkout, not from an installed copy.
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
sys.path.insert(0, ROOT)


def _version():
    # Read the version as text, like setup.py does, instead of importing toto.
    with open(os.path.join(ROOT, 'toto', '__init__.py')) as source:
        return re.search(r"^version = '([^']+)'", source.read(), re.M).group(1)


project = 'toto-compat'
author = 'the toto-compat authors'
copyright = 'the toto-compat authors'
release = _version()
version = '.'.join(release.split('.')[:2])

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.viewcode',
]

root_doc = master_doc = 'index'
exclude_patterns = ['_build']

autodoc_member_order = 'bysource'

html_theme = 'alabaster'
html_theme_options = {
    'description': 'The Toto worker RPC layer on Python 2.7 and 3',
}
