"""WSGI application of fixture-service."""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"fixture-service\n"]
