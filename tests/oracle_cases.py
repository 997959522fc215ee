"""The calls the differential tests make, by case id (shared by the worker and kit tests).

A :class:`Case` is one call: its id (the key of ``oracle_differences.DIFFERENCES``), the
method, the parameters and the keys to mask.  ``BASIC_CASES`` need only the worker RPC
layer (the ``basic_app`` and ``worker_app`` packages both have their methods);
``DECORATOR_CASES`` and ``APP_CASES`` need ``worker_app`` and what it uses of
``toto.invocation``, ``toto.tasks`` and tornado options.
"""

class Case(object):
    def __init__(self, case, method, parameters=None, mask=()):
        self.case = case
        self.method = method
        self.parameters = parameters
        self.mask = mask

    def __repr__(self):
        return self.case

    def run(self, pair):
        """Compare this call on ``pair``; return the Comparison."""
        return pair.compare(self.case, self.method, self.parameters, mask=self.mask)


BASIC_CASES = [
    Case('echo.values', 'echo', {'text': 'tea', 'cups': 2, 'price': 2.5, 'nothing': None,
                                 'yes': True, 'no': False, 'list': [1, 'two', [3.0]],
                                 'nested': {'k': {'v': -1}}, 'big': 2 ** 40}),
    Case('echo.non_ascii_text', 'echo', {'text': u'th\xe9 \u2615', u'cl\xe9': 1}),
    Case('echo.empty', 'echo', {}),
    Case('errors.toto_exception', 'toto_error', {'item': 'scones'}),
    Case('errors.toto_exception_default', 'toto_error'),
    Case('errors.plain_exception', 'plain_error', {'state': 'cold'}),
    Case('errors.key_error', 'key_error'),
    Case('methods.nested', 'a.b', {'q': 1}),
    Case('methods.missing', 'nope'),
    Case('methods.missing_nested', 'a.nope'),
    Case('methods.package_without_invoke', 'a'),
    Case('methods.private_name', '_private'),
    Case('methods.through_an_imported_module', 'echo.json'),
    Case('methods.function_attribute', 'a.b.invoke'),
]

DECORATOR_CASES = [
    Case('requires.given', 'requires_ab', {'a': 1, 'b': 2}),
    Case('requires.missing_one', 'requires_ab', {'a': 1}),
    Case('requires.missing_both', 'requires_ab', {}),
    # None counts as given: the method itself then fails adding them.
    Case('requires.none_is_given', 'requires_ab', {'a': None, 'b': None}),
    Case('default_parameters.filled_in', 'defaults', {}),
    Case('default_parameters.given_wins', 'defaults', {'size': 5, 'extra': 'x'}),
    Case('default_parameters.before_requires', 'requires_defaulted', {'a': 1}),
    Case('default_parameters.before_requires_missing', 'requires_defaulted', {}),
]

APP_CASES = [
    Case('tasks.add_task', 'task_thread', {'n': 7}),
    Case('tasks.yield_task_coroutine', 'task_coroutine', {'n': 7}),
    Case('options.defined_by_a_method_module', 'app_option'),
    Case('options.defined_by_the_startup_module', 'startup_info'),
]
