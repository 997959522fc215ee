"""Describes a multipart body's parameters (file bodies are bytes on Python 3)."""
from toto.invocation import *


def invoke(handler, parameters):
    files = {}
    for field, uploads in parameters['files'].items():
        files[field] = [{'filename': upload['filename'], 'content_type': upload['content_type'],
                         'body': upload['body'].decode('latin-1'),
                         'body_is_bytes': isinstance(upload['body'], bytes),
                         'is_dict': isinstance(upload, dict)}
                        for upload in uploads]
    return {'arguments': parameters['arguments'], 'files': files}
