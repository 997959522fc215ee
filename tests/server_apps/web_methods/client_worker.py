"""Queue a client-side operation (``add``) and read the results its callback got (``results``)."""

from toto.clientsideworker import ClientSideWorkerManager

results = []


def _record(worker, result):
    results.append(result)


def invoke(handler, parameters):
    if parameters.get('add'):
        ClientSideWorkerManager.instance().add_operation(
            parameters['add'], parameters.get('script', ''), callback_method=_record)
        return {'queued': parameters['add']}
    return {'results': results}
