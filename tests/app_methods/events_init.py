"""The --event_init_module of tests/app_methods: says that it ran, with an event."""
import os


def invoke(event_manager):
    event_manager.send('app.event_init', {'pid': os.getpid()})
