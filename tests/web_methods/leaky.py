"""Imports a module from outside the method package (which has an invoke)."""
import web_outside  # noqa: F401

from toto.invocation import *


def invoke(handler, parameters):
    return 'leaky'
