"""Writing small marker files atomically, so a test polling for them never reads half."""

import os


def write_atomically(path, text):
    temporary = '%s.%d.tmp' % (path, os.getpid())
    with open(temporary, 'w') as stream:
        stream.write(text)
    os.rename(temporary, path)
