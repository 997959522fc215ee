"""A startup_function that records what it was given, for the ``startup_info`` method."""

recorded = {}


def on_start(db_connection, application):
    recorded['db_connection'] = type(db_connection).__name__
    recorded['application'] = type(application).__name__
    recorded['has_db'] = db_connection is not None
