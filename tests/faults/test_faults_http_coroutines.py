"""The HTTP worker service awaits coroutine methods without holding up other requests.

One process of ``TotoHTTPWorkerService``: calls of a coroutine method that waits until
a number of its calls run at once are all answered, which they can only be if the
process serves them side by side.
"""

import pytest
from tornado import gen


@pytest.mark.timeout(60)
def test_http_worker_runs_coroutine_calls_side_by_side_in_one_process(lab):
    from toto.httpworkerconnection import HTTPWorkerConnection
    service = lab.http_service(processes=1, args=['--method_module=worker_methods'])
    connection = HTTPWorkerConnection(service.address, timeout=20)

    # Tornado's default HTTP client sends at most 10 requests at once.
    answers = lab.http(lambda: gen.multi([
        connection.invoke('gathers', {'expect': 8, 'wait': 10.0}) for _ in range(8)]))

    assert [answer['most_at_once'] for answer in answers] == [8] * 8, answers


@pytest.mark.timeout(60)
def test_http_worker_answers_a_plain_call_while_coroutine_calls_wait(lab):
    from toto.httpworkerconnection import HTTPWorkerConnection
    service = lab.http_service(processes=1, args=['--method_module=worker_methods'])
    connection = HTTPWorkerConnection(service.address, timeout=20)
    waiting = []

    def start_waiting():
        # Never reached: each call waits its full 5 s.
        waiting.extend(connection.invoke('gathers', {'expect': 99, 'wait': 5.0})
                       for _ in range(3))
    lab.http(start_waiting)

    answer = lab.http(lambda: connection.invoke('echo', {'n': 7}))

    assert answer == {'n': 7}
    assert not any(future.done() for future in waiting), 'answered before the waits ended'
    assert [answer['most_at_once'] for answer in lab.http(lambda: gen.multi(waiting))] == \
        [3] * 3
