"""The chat methods: post_message sends a message, receive_message waits for the next one."""

from . import post_message, receive_message  # noqa: F401
