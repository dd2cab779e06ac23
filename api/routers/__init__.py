"""Routers, one module per concern; :func:`api.app.create_app` includes them all."""
