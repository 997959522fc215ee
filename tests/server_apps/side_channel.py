"""Where a method of the test apps leaves a note the test reads: a file per note.

The test gives the folder in ``TOTO_TEST_NOTES``; the note's name says what it is
(e.g. ``waiting-<pid>``), so a test learns which process holds a long poll.
"""

import os


def leave_note(name, text=''):
    folder = os.environ.get('TOTO_TEST_NOTES')
    if not folder:
        return
    path = os.path.join(folder, name)
    with open(path + '.tmp', 'w') as note:
        note.write(text)
    os.rename(path + '.tmp', path)
