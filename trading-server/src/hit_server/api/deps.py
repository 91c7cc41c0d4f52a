"""FastAPI dependencies as `Annotated` aliases; they read what the lifespan put on `app.state`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from hit_server.http_errors import NotReady
from hit_server.service import TradingService
from hit_server.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_service(request: Request) -> TradingService:
    service: TradingService | None = getattr(request.app.state, "service", None)
    if service is None:
        raise NotReady("The server is starting up or shutting down; retry shortly.")
    return service


SettingsDep = Annotated[Settings, Depends(get_settings)]
TradingServiceDep = Annotated[TradingService, Depends(get_service)]
