"""Events between Toto 1.0.12 and this package, both ways (toto.events).

Two listeners (one per package) and two senders (one per package), each a real process
running tests/oracle_apps/event_peer.py with the original's ``EventManager`` API: every
sender registers both listeners as servers and broadcasts a ``thread_event`` (handled on
the listener's thread) and a ``loop_event`` (``run_on_main_loop=True``).  What each
listener received from each sender must be what 1.0.12 received from 1.0.12 -- the same
names, the same arguments, handled in the same places -- unless
tests/oracle_differences.py lists the case.
"""

import oracle

ARGS = {'text': 'tea for two', 'unicode': u'th\xe9', 'count': 2, 'price': 1.5,
        'flags': [True, False, None], 'nested': {'cups': [1, 2]}}
EVENTS = [['thread_event', ARGS], ['loop_event', dict(ARGS, count=3)]]
ROLES = (oracle.ORIGINAL, oracle.COMPAT)


def _from(received, sender):
    """The events of ``sender``, without the sender's mark, in name order."""
    events = []
    for event in received:
        args = dict(event['args'])
        if args.pop('sender') == sender:
            events.append(dict(event, args=args))
    return sorted(events, key=lambda event: event['name'])


def test_events_cross_between_the_packages_both_ways(tmp_path):
    with oracle.EventPeers(str(tmp_path)) as peers:
        listeners = dict((role, peers.listen(role)) for role in ROLES)
        addresses = [listeners[role].address for role in ROLES]
        # One event at a time, each handled everywhere before the next is sent. 1.0.12's
        # listener hands a main-loop handler the arguments of the last event its thread
        # decoded, not of the handler's own event: an event arriving before the main loop
        # ran the callback changes what the callback sees (seen: a loop_event handled with
        # the arguments of the thread_event that followed it).
        sent = 0
        for name, args in EVENTS:
            for role in ROLES:
                peers.send(role, addresses, [[name, dict(args, sender=role)]])
                sent += 1
                received = dict((listener, peers.wait_received(listeners[listener], sent))
                                for listener in ROLES)

    baseline = _from(received[oracle.ORIGINAL], oracle.ORIGINAL)
    # Everything each listener logged, should the baseline be incomplete.
    assert [(event['name'], event['on']) for event in baseline] == [
        ('loop_event', 'main loop'), ('thread_event', 'listener thread')], received
    assert baseline[1]['args'] == ARGS
    for listener in ROLES:
        for sender in ROLES:
            case = 'events.from_%s_to_%s' % (sender, listener)
            observed = _from(received[listener], sender)
            answers = {oracle.ORIGINAL: baseline, oracle.COMPAT: observed}
            oracle.check(oracle.Comparison(case, 'EventManager.send', EVENTS, answers,
                                           answers))
