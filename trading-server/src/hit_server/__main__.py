"""`python -m hit_server`: settings from the environment and `trading-server/.env`, then uvicorn."""

from __future__ import annotations

import logging
import sys

import uvicorn
from pydantic import ValidationError

from hit_server.server import create_app
from hit_server.settings import Settings

log = logging.getLogger("hit_server")


def configure_logging(settings: Settings) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if settings.log_dir is not None:
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(settings.log_dir / "trading-server.log", encoding="utf-8"))
    logging.basicConfig(
        level=settings.log_level,
        handlers=handlers,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main() -> int:
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(str(error["msg"]).removeprefix("Value error, ") for error in exc.errors())
        sys.stderr.write(f"The trading server cannot start: {problems}\n")
        return 2
    configure_logging(settings)
    app = create_app(settings)
    log.info("Listening on http://%s:%d (API docs at /docs)", settings.host, settings.port)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
