"""Answer an object that pickles fine but cannot be unpickled (loading raises ValueError)."""


class Unloadable(object):
    """Pickled as the call ``int('not a number')``, which raises when it is loaded."""

    def __reduce__(self):
        return (int, ('not a number',))


def invoke(worker, parameters):
    return {'value': Unloadable()}
