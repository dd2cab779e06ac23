"""FastAPI application and the ``renewal`` command line."""
