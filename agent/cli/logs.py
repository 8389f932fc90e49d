"""Where the CLI sends the library's log records: nowhere, unless asked.

Every module logs to `logging.getLogger(__name__)`; each top-level package (`agent`,
`tools`, `schemas`, `tui`) carries a `NullHandler`, so a program that embeds edge-agent
sees nothing until it configures logging itself. The CLI turns records on with
`--verbose` (debug) or `EDGE_AGENT_LOG=debug|info|warning|error|critical` and writes
them to stderr, away from the answers and JSON events on stdout.
"""

from __future__ import annotations

import logging
import os
import sys

from agent.errors import UserError

ENV_VAR = "EDGE_AGENT_LOG"
PACKAGES = ("agent", "tools", "schemas", "tui")
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


class _StderrHandler(logging.Handler):
    """Writes to whatever `sys.stderr` is at the time of the record, not at setup: the
    TUI (Textual) swaps stderr while it owns the terminal, and tests capture it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def requested_level(verbose: bool, environ: dict[str, str] | None = None) -> int | None:
    """The level asked for (None: stay quiet); `--verbose` means debug. A bad value of
    the variable is a UserError naming the values it takes."""
    value = (os.environ if environ is None else environ).get(ENV_VAR, "").strip().lower()
    if value and value not in LEVELS:
        raise UserError(f"{ENV_VAR}={value!r} is not a log level; use one of {', '.join(LEVELS)}")
    levels = [LEVELS[value]] if value else []
    if verbose:
        levels.append(logging.DEBUG)
    return min(levels) if levels else None


def configure(level: int | None) -> None:
    """Log records at `level` and above go to stderr (None: none do). Calling it again
    replaces the previous setup, so in-process CLI calls do not pile up handlers."""
    for name in PACKAGES:
        logger = logging.getLogger(name)
        ours = [h for h in logger.handlers if isinstance(h, _StderrHandler)]
        for handler in ours:
            logger.removeHandler(handler)
        if level is None:
            if ours:  # undo only our own setup: an embedding program's levels stay
                logger.setLevel(logging.NOTSET)
        else:
            logger.setLevel(level)
            handler = _StderrHandler()
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
            )
            logger.addHandler(handler)
