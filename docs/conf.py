"""Sphinx configuration for the toto-compat documentation."""

import os
import re
import sys

# Document the package from this checkout, not from an installed copy.
HERE = os.path.abspath(os.path.dirname(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
# Local extensions: totooptions builds the option tables from the code, and
# examplediff shows how two example files differ.
sys.path.insert(0, os.path.join(HERE, '_ext'))


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
    'totooptions',
    'examplediff',
    'oracledifferences',
]

root_doc = master_doc = 'index'
exclude_patterns = ['_build']

autodoc_member_order = 'bysource'

html_theme = 'alabaster'
html_theme_options = {
    'description': 'The Toto web framework and worker RPC layer on Python 2.7 and 3',
    # Wide enough for the option tables and most code lines.
    'page_width': '1040px',
}
