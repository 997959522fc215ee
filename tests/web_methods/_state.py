"""What the test methods saw, for the tests to read (not a method: the name is private)."""

import threading

lock = threading.Lock()
events = {}       # name -> threading.Event
values = {}       # name -> list of recorded values


def event(name):
    with lock:
        return events.setdefault(name, threading.Event())


def record(name, value):
    with lock:
        values.setdefault(name, []).append(value)
    event(name).set()


def reset():
    with lock:
        events.clear()
        values.clear()
