from toto.invocation import *


class Checkout(object):
    """A method found through an attribute chain: shop.cart.Checkout."""

    @staticmethod
    def invoke(handler, parameters):
        return {'total': sum(parameters.get('prices', []))}


def invoke(handler, parameters):
    return {'items': len(parameters.get('items', []))}
