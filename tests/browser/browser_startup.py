"""The ``startup_function`` of the TotoServers that tests/test_browser.py drives.

``init(db_connection=, application=)`` adds to the server's Application, beside the
Toto routes (served under ``root='/api'``):

- ``/page/<file>``: the files of this folder, so a page can talk to the server from
  its own origin;
- ``/report``: POST stores a page's JSON results, GET answers them;
- ``/requests``: what the browser sent, request by request (verb, path, whether it
  carried the ``toto-session-id`` cookie, its ``Origin`` and ``Sec-Fetch-Site``), for
  the test to check that a refused cross-site post did carry the cookie.

Uses only Tornado and 1.0.12's startup signature, so it runs under either package.
"""

import json
import os

from tornado.web import RequestHandler, StaticFileHandler

PAGES = os.path.dirname(os.path.abspath(__file__))
COOKIE_NAME = 'toto-session-id'
REQUESTS = []
REPORTS = []


class _ReportHandler(RequestHandler):
    def post(self):
        REPORTS.append(json.loads(self.request.body.decode('utf-8')))

    def get(self):
        self.set_header('Content-Type', 'application/json')
        self.write(json.dumps(REPORTS))


class _RequestsHandler(RequestHandler):
    def get(self):
        self.set_header('Content-Type', 'application/json')
        self.write(json.dumps(REQUESTS))


def _logging_find_handler(find_handler):
    def find_and_log(request, **kwargs):
        if not request.path.startswith(('/requests', '/report')):
            cookies = request.headers.get('Cookie', '')
            REQUESTS.append({'verb': request.method, 'path': request.path,
                             'cookie': COOKIE_NAME + '=' in cookies,
                             'origin': request.headers.get('Origin'),
                             'sec_fetch_site': request.headers.get('Sec-Fetch-Site'),
                             'content_type': request.headers.get('Content-Type')})
        return find_handler(request, **kwargs)
    return find_and_log


def init(db_connection=None, application=None):
    application.add_handlers(r'.*$', [
        (r'/page/(.*)', StaticFileHandler, {'path': PAGES}),
        (r'/report', _ReportHandler),
        (r'/requests', _RequestsHandler),
    ])
    application.find_handler = _logging_find_handler(application.find_handler)
