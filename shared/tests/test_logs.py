import asyncio
import logging

from hit_shared.logs import configure_logging, current_signal_id, signal_context


def read(path):
    return path.read_text(encoding="utf-8").splitlines()


def test_configure_logging_writes_one_line_per_event_with_the_signal_id(tmp_path):
    log_file = configure_logging("unit", "INFO", tmp_path / "logs")
    try:
        log = logging.getLogger("hit.test")
        log.info("before")
        with signal_context("discord:1:2"):
            log.info("handling")
            log.debug("hidden at INFO")
        log.warning("after")
        for handler in logging.getLogger().handlers:
            handler.flush()
        lines = read(log_file)
    finally:
        logging.basicConfig(force=True, handlers=[logging.NullHandler()])
    assert len(lines) == 3
    assert "[-] before" in lines[0]
    assert "INFO hit.test [discord:1:2] handling" in lines[1]
    assert "WARNING hit.test [-] after" in lines[2]


def test_signal_context_follows_tasks_and_is_isolated_between_signals():
    async def handle(signal_id: str) -> tuple[str | None, str | None]:
        with signal_context(signal_id):
            await asyncio.sleep(0)
            inner = await asyncio.create_task(asyncio.sleep(0, result=current_signal_id()))
            return current_signal_id(), inner

    async def main():
        return await asyncio.gather(handle("a"), handle("b"))

    assert asyncio.run(main()) == [("a", "a"), ("b", "b")]
    assert current_signal_id() is None


def test_configure_logging_without_a_directory_writes_no_file(tmp_path):
    try:
        assert configure_logging("unit", "WARNING", None) is None
    finally:
        logging.basicConfig(force=True, handlers=[logging.NullHandler()])
    assert list(tmp_path.iterdir()) == []


def test_configure_logging_quiets_per_request_library_lines_unless_debugging(tmp_path):
    try:
        configure_logging("unit", "INFO", None, chatty=("a.queue",))
        assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
        assert not logging.getLogger("a.queue").isEnabledFor(logging.INFO)  # this service's own
        assert logging.getLogger("a.queue").isEnabledFor(logging.WARNING)
        assert logging.getLogger("hit.any").isEnabledFor(logging.INFO)
        configure_logging("unit", "DEBUG", None, chatty=("a.queue",))
        assert logging.getLogger("httpx").isEnabledFor(logging.DEBUG)
        assert logging.getLogger("a.queue").isEnabledFor(logging.DEBUG)
    finally:
        logging.getLogger("httpx").setLevel(logging.NOTSET)
        logging.getLogger("a.queue").setLevel(logging.NOTSET)
        logging.basicConfig(force=True, handlers=[logging.NullHandler()])
