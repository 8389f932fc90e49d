"""`now`: the current date and time, which a model cannot know on its own."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tools.errors import ToolExecutionError
from tools.tool import tool


@tool(name="now", timeout=5.0)
def now(timezone: str | None = None) -> str:
    """The current date and time (ISO 8601) and the day of the week.

    Args:
        timezone: An IANA time zone such as "Europe/Paris" or "UTC"; the machine's local
            time zone when omitted.
    """
    if timezone is None or not timezone.strip():
        moment = datetime.now().astimezone()
        zone = moment.tzname() or "local"
    else:
        try:
            tz = ZoneInfo(timezone.strip())
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ToolExecutionError(
                f"unknown time zone '{timezone}'; use an IANA name such as 'Europe/Paris' or 'UTC'"
            ) from None
        moment = datetime.now(tz)
        zone = timezone.strip()
    return f"{moment.isoformat(timespec='seconds')} ({moment.strftime('%A')}, {zone})"
