"""The methods of the server tests (``--method_module=web_methods``)."""
