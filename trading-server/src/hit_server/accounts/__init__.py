"""Accounts (issue #19): members' own BloFin accounts, their keys encrypted at rest (`crypto.py`), stored
in the journal's database (`store.py`), managed by `python -m hit_server accounts ...` (`cli.py`) and
/api/v1/accounts (`routes.py`)."""
