"""A module with an invoke, outside the test method package (must not be callable)."""


def invoke(handler, parameters):
    return 'outside was called'
