"""The HTTP API (docs/api.md): routes only; the work is in `trading/service.py`, the errors in
`http_errors.py`."""
