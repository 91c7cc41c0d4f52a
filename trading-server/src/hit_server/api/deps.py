"""FastAPI dependencies as `Annotated` aliases; they read what the lifespan put on `app.state`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from hit_server.api.http_errors import NotReady
from hit_server.settings import Settings
from hit_server.trading.service import TradingService

# The dependencies are async on purpose: FastAPI runs a sync dependency on a worker thread, and the
# thread hand-off (GIL switch interval) costs milliseconds per request on a busy event loop.


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_service(request: Request) -> TradingService:
    service: TradingService | None = getattr(request.app.state, "service", None)
    if service is None:
        raise NotReady("The server is starting up or shutting down; retry shortly.")
    return service


SettingsDep = Annotated[Settings, Depends(get_settings)]
TradingServiceDep = Annotated[TradingService, Depends(get_service)]
