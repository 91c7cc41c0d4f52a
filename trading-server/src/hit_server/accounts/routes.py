"""/api/v1/accounts: the accounts registry over HTTP, behind the API key like every /api/v1 route.

Keys go in (POST, PUT .../keys) and never come out: every answer is an `AccountOut`. Errors take the
one error shape (`api/http_errors.py`): 404 no such account, 409 a taken name or the `default` account
(its settings are the server's), 422 a bad body, 503 no usable master key.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from hit_server.accounts.crypto import MasterKeyError
from hit_server.accounts.models import (
    NAME_PATTERN,
    AccountChange,
    AccountCreate,
    AccountKeys,
    AccountOut,
    AccountsOut,
)
from hit_server.accounts.store import AccountConflict, AccountNotFound, AccountStore
from hit_server.api.deps import SettingsDep, TradingServiceDep
from hit_server.api.http_errors import ApiError, NotFound, NotReady
from hit_server.api.routes import ERRORS
from hit_server.api.security import require_api_key

router = APIRouter(prefix="/api/v1/accounts", dependencies=[Depends(require_api_key)], responses=ERRORS)
NamePath = Annotated[str, Path(pattern=NAME_PATTERN, description="The account's name (a short slug)")]


class AccountConflictError(ApiError):
    status = 409
    code = "account_conflict"


class MasterKeyUnavailable(NotReady):
    code = "master_key_unavailable"


async def get_store(service: TradingServiceDep, settings: SettingsDep) -> AccountStore:
    """The store over the server's journal database (made per request: it holds two references)."""
    return AccountStore(service.journal.db, settings)


StoreDep = Annotated[AccountStore, Depends(get_store)]


def _mapped(exc: Exception) -> ApiError:
    if isinstance(exc, AccountNotFound):
        return NotFound(str(exc))
    if isinstance(exc, AccountConflict):
        return AccountConflictError(str(exc))
    return MasterKeyUnavailable(str(exc))


@router.get("", response_model=AccountsOut)
async def list_accounts(store: StoreDep) -> AccountsOut:
    """Every account, `default` (the server's settings) first; never a key, at most a 4-character hint."""
    return AccountsOut(accounts=await store.list())


@router.get("/{name}", response_model=AccountOut)
async def get_account(name: NamePath, store: StoreDep) -> AccountOut:
    try:
        return await store.get(name)
    except AccountNotFound as exc:
        raise _mapped(exc) from None


@router.post("", response_model=AccountOut, status_code=status.HTTP_201_CREATED)
async def add_account(account: AccountCreate, store: StoreDep) -> AccountOut:
    """A new account with its BloFin keys, stored encrypted; the answer holds no key."""
    try:
        return await store.add(account)
    except (AccountConflict, MasterKeyError) as exc:
        raise _mapped(exc) from None


@router.patch("/{name}", response_model=AccountOut)
async def change_account(name: NamePath, change: AccountChange, store: StoreDep) -> AccountOut:
    """Change the fields given (enabled, risk settings, symbols, egress group); null for a risk setting
    means the server's setting again."""
    try:
        return await store.change(name, change)
    except (AccountNotFound, AccountConflict) as exc:
        raise _mapped(exc) from None


@router.put("/{name}/keys", response_model=AccountOut)
async def rotate_keys(name: NamePath, keys: AccountKeys, store: StoreDep) -> AccountOut:
    """Replace the account's BloFin keys; the answer holds no key."""
    try:
        return await store.rotate_keys(name, keys)
    except (AccountNotFound, AccountConflict, MasterKeyError) as exc:
        raise _mapped(exc) from None
