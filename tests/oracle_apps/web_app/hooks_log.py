"""The method paths the before hook saw (installed by ``web_app_startup.init``)."""

from toto.invocation import *

BEFORE = []
AFTER = []


def invoke(handler, parameters):
    answer = {'before': list(BEFORE), 'after': len(AFTER)}
    if parameters.get('clear'):
        del BEFORE[:]
        del AFTER[:]
    return answer
