"""The event server's setup (event_init_module): log every chat message it receives."""

import logging

logger = logging.getLogger('chat.events')


def log_message(message):
    logger.info('message: %s', message)


def invoke(event_manager):
    event_manager.register_handler('message', log_message, persist=True)
