"""The methods websocket messages call in the tests (``--socket_method_module``)."""
