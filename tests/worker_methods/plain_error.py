"""Fail with an exception that is not a TotoException."""


def invoke(worker, parameters):
    raise ValueError('plain failure: %s' % (parameters.get('why', 'no reason'),))
