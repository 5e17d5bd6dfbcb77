"""``spokenword serve``: the HTTP API and the web page (see :mod:`spokenword.serve.app`)."""

from spokenword.serve.app import create_app, serve

__all__ = ["create_app", "serve"]
