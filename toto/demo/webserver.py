"""The demo's web server: ``python -m toto.demo.webserver --port=8888 --worker_address=...``.

A TotoServer start script like any app's, serving :mod:`toto.demo.webmethods`
with accounts in a json file (``--db_host``) and request signatures on
(``--hmac_enabled``). ``python -m toto.demo`` starts it with a worker behind
it; started alone, ``worker_sum`` needs ``--worker_address`` of a running
worker service of :mod:`toto.demo.methods`.
"""

from __future__ import absolute_import, division, print_function

from toto.server import TotoServer


def main():
    TotoServer(method_module='toto.demo.webmethods', database='json', hmac_enabled=True,
               processes=1).run()


if __name__ == '__main__':
    main()
