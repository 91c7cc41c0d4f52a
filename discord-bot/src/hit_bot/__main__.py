"""`python -m hit_bot` runs the bot; `python -m hit_bot replay FILE` replays a file of messages.

Settings, logging and the HTTP client are built here, once, and passed down. Configuration problems
end the program with one sentence naming the setting (exit code 2), never a traceback. So does a bot
that cannot get in at all (token refused, intent missing, Discord unreachable; exit code 1): one
sentence saying what failed and what to check, logged, so it is in `logs/discord-bot.log` too.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp
import discord
import httpx

from hit_bot.settings import BotSettings, ServerSettings, SettingsError, load_server_settings, load_settings
from hit_shared.logs import configure_logging as setup_logs

if TYPE_CHECKING:
    from hit_bot.parser import ParseResult

log = logging.getLogger("hit_bot")


def configure_logging(level: str, log_dir: Path, *, console_level: str | None = None) -> None:
    """Console and `<log_dir>/discord-bot.log`; each line about a signal carries its signal_id."""
    log_file = setup_logs("discord-bot", level, log_dir)
    if console_level is not None:
        for handler in logging.getLogger().handlers:
            if not isinstance(handler, logging.FileHandler):
                handler.setLevel(console_level)
    log.info("Logging to the console and %s (LOG_LEVEL=%s)", log_file, level)
    if level == "DEBUG":  # discord.py's gateway chatter is noise even when debugging the bot
        logging.getLogger("discord.gateway").setLevel(logging.INFO)


def _say(text: str) -> None:
    sys.stderr.write(text.rstrip() + "\n")


def start_failure(exc: BaseException, settings: BotSettings) -> str | None:
    """The sentence for an error that keeps the bot from getting in (what failed, what to check), or
    None for anything else. Once connected, discord.py rides out network trouble by reconnecting; these
    come from the login, where nothing is retried."""
    where = urlsplit(settings.discord_api_base).netloc or settings.discord_api_base
    if isinstance(exc, discord.LoginFailure):
        return ("Discord refused DISCORD_TOKEN: copy the bot's token again (Developer Portal, Bot tab, "
                "Reset Token) into discord-bot/.env.")
    if isinstance(exc, discord.PrivilegedIntentsRequired):
        return "Discord refused the Message Content intent: enable it for this bot in the Developer Portal."
    if isinstance(exc, discord.DiscordServerError | discord.GatewayNotFound):
        return f"Discord ({where}) is answering with errors ({exc}): try again in a few minutes."
    if isinstance(exc, aiohttp.ClientError | OSError | TimeoutError):
        return (f"Could not reach Discord at {where} ({exc or type(exc).__name__}): check this machine's "
                "internet connection, DNS, proxy and firewall, then start the bot again.")
    return None


def _run_bot(env_file: Path | None) -> int:
    settings = load_settings(env_file)
    configure_logging(settings.log_level, settings.log_dir)
    parse = _load_parser(settings)
    if parse is None:
        return 2
    from hit_bot.bot import run_bot

    try:
        asyncio.run(run_bot(settings, parse))
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        sentence = start_failure(exc, settings)
        if sentence is None:
            log.critical("the bot stopped on an unexpected error", exc_info=True)  # a bug: the file keeps it
        else:
            log.error("%s", sentence)  # the console and logs/discord-bot.log
        return 1
    return 0


def _load_parser(settings: ServerSettings) -> Callable[[str], ParseResult] | None:
    """The parser, with the vocabulary file PARSER_VOCABULARY names (the environment's, else the .env
    file's), or None once a file that can't be used has been reported (logged: the log file has it too)."""
    from hit_bot.parsing import VOCABULARY_VARIABLE, VocabularyError  # the parser is not imported yet

    if settings.parser_vocabulary is not None and VOCABULARY_VARIABLE not in os.environ:
        os.environ[VOCABULARY_VARIABLE] = str(settings.parser_vocabulary)
    try:
        from hit_bot.parser import parse
    except VocabularyError as exc:
        log.error("hit-bot cannot start: %s", exc)
        return None
    return parse


async def _replay(settings: ServerSettings, path: Path, parse: Callable[[str], ParseResult]) -> str:
    from hit_bot.replay import format_table, replay
    from hit_bot.trading_client import TradingClient

    async with httpx.AsyncClient() as http:
        client = TradingClient(http, settings.trading_server_url,
                               settings.trading_server_api_key.get_secret_value(),
                               deadline=settings.trading_deadline_seconds,
                               attempt_timeout=settings.trading_attempt_timeout_seconds)
        return format_table(await replay(path, parse=parse, client=client))


def _run_replay(env_file: Path | None, path: Path) -> int:
    from hit_bot.replay import ReplayFileError

    settings = load_server_settings(env_file)
    quiet = settings.log_level if settings.log_level != "INFO" else "WARNING"  # the table is the output
    configure_logging(settings.log_level, settings.log_dir, console_level=quiet)
    parse = _load_parser(settings)
    if parse is None:
        return 2
    try:
        sys.stdout.write(asyncio.run(_replay(settings, path, parse)) + "\n")
    except ReplayFileError as exc:
        _say(str(exc))
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hit_bot", description="HIT Discord bot")
    parser.add_argument("--env-file", type=Path, default=None,
                        help="settings file (default: discord-bot/.env); the environment wins over it")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the bot (the default)")
    replay_parser = sub.add_parser("replay", help="send each message of a file through parse and forward")
    replay_parser.add_argument("file", type=Path, help=".jsonl with {\"text\": ...} per line, or blank-line "
                                                       "separated text")
    args = parser.parse_args(argv)
    from hit_bot.settings import DEFAULT_ENV_FILE

    env_file = args.env_file or DEFAULT_ENV_FILE
    try:
        if args.command == "replay":
            return _run_replay(env_file, args.file)
        return _run_bot(env_file)
    except SettingsError as exc:
        _say(f"hit-bot cannot start: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
