"""``hello``: greets ``parameters['name']`` (a POST body or a GET query)."""


def invoke(handler, parameters):
    return {'hello': parameters.get('name', 'world')}
