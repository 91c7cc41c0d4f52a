"""The HTTP API (spec/api.md): routes only; the work is in `service.py`, errors in `http_errors.py`."""
