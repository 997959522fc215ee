from toto.invocation import *


def invoke(handler, parameters):
    handler.event_manager.instance().send(parameters['name'], parameters.get('args'))
    return {'sent': parameters['name']}
