"""fixture-service: a test fixture for venvdeb."""
__version__ = "1.0.0"
