"""Running one validated call: approval, conversion, timeout, and turning the outcome
(a value, an exception, a timeout) into text the model reads.

Nothing here raises for a failing tool: a small model recovers better from an error it
can read ("timed out after 5s", "denied by the user") than from a crashed loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.limits import InputLimitError, check_value
from agent.limits import loads as bounded_loads
from tools.calls import ApprovalCallback, ToolCall, ToolOutput, ToolResult
from tools.errors import ToolExecutionError
from tools.signature import ArgumentConversionError
from tools.tool import Tool

DEFAULT_MAX_RESULT_CHARS = 32_000
log = logging.getLogger(__name__)


@dataclass
class PreparedCall:
    """A call checked against its tool, or the error result that replaces it."""

    call: ToolCall
    tool: Tool | None = None
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None
    failure: str | None = None
    started: float = 0.0


def prepare(call: ToolCall, tool: Tool | None, available: Callable[[], list[str]]) -> PreparedCall:
    """Look up, validate (jsonschema) and convert (pydantic) the arguments of `call`.

    Never raises (bar KeyboardInterrupt and the like): whatever goes wrong with one call,
    from arguments nested too deep for jsonschema to a converter that crashes, becomes
    that call's failure, so the other calls of the step keep their results.
    """
    prepared = PreparedCall(call, tool, started=time.perf_counter())
    try:
        prepared.failure = _prepare(prepared, available)
    except Exception as exc:  # a bug or a pathological input: still the call's own error
        prepared.failure = unexpected(call, exc)
    return prepared


def unexpected(call: ToolCall, exc: BaseException) -> str:
    """One sentence for a failure nothing anticipated (RecursionError, MemoryError...);
    the traceback goes to the log."""
    log.error("the call to %r failed unexpectedly", call.name, exc_info=exc)
    detail = _message(exc, 200).splitlines()[0] if _message(exc, 200) else ""
    name = call.name if isinstance(call.name, str) else repr(call.name)[:60]
    return f"the call to '{name}' could not be run ({type(exc).__name__}" + (
        f": {detail})" if detail else ")"
    )


def _prepare(prepared: PreparedCall, available: Callable[[], list[str]]) -> str | None:
    """The failure of `prepared.call`, or None with its arguments bound."""
    call, tool = prepared.call, prepared.tool
    if tool is None:
        names = available()
        listing = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        return f"unknown tool '{call.name}'; available tools: {listing or 'none'}"
    arguments: Any = call.arguments
    what = f"the arguments of '{call.name}'"
    try:
        if isinstance(arguments, (str, bytes)):
            arguments = bounded_loads(arguments, what) if arguments.strip() else {}
        else:
            check_value(arguments, what)
    except InputLimitError as exc:
        return str(exc)
    except ValueError as exc:  # json.JSONDecodeError, or bytes that are not UTF-8
        return f"arguments of '{call.name}' are not valid JSON: {exc}"
    if not isinstance(arguments, dict):
        return f"arguments of '{call.name}' must be a JSON object, not {type(arguments).__name__}"
    errors = tool.validation_errors(arguments)
    if errors:
        return f"invalid arguments for '{call.name}': " + "; ".join(errors)
    if tool.function is None:
        return f"no implementation for tool '{call.name}' (it was loaded from a definition)"
    try:
        assert tool.binder is not None
        prepared.args, prepared.kwargs = tool.binder.bind(arguments)
    except ArgumentConversionError as exc:
        return f"invalid arguments for '{call.name}': {exc}"
    return None


async def approve(prepared: PreparedCall, callback: ApprovalCallback | None) -> None:
    """Ask `callback` about a call to a `requires_approval` tool; a no marks it failed."""
    tool = prepared.tool
    if prepared.failure or tool is None or not tool.requires_approval:
        return
    if callback is None:
        prepared.failure = (
            f"tool '{tool.name}' requires approval and no approval callback is set; not run"
        )
        return
    try:
        if inspect.iscoroutinefunction(callback):
            answer: Any = await callback(prepared.call, tool)
        else:
            answer = await run_in_thread(callback, prepared.call, tool)
            if inspect.isawaitable(answer):
                answer = await answer
    except Exception as exc:
        prepared.failure = f"approval failed: {type(exc).__name__}: {exc}"
        return
    if answer is not True:
        prepared.failure = "denied by the user"


async def run(prepared: PreparedCall, max_chars: int) -> ToolResult:
    """Run a prepared call under its tool's timeout and wrap the outcome."""
    call = prepared.call
    if prepared.failure is not None:
        return _error(prepared, prepared.failure)
    tool = prepared.tool
    assert tool is not None and tool.function is not None
    args, kwargs = prepared.args or [], prepared.kwargs or {}
    started = time.perf_counter()
    try:
        if tool.is_async:
            value = await asyncio.wait_for(_contained(tool.function(*args, **kwargs)), tool.timeout)
        else:
            value = await asyncio.wait_for(
                run_in_thread(tool.function, *args, **kwargs), tool.timeout
            )
            if inspect.isawaitable(value):
                value = await asyncio.wait_for(value, tool.timeout)
    except asyncio.TimeoutError:
        return _error(prepared, f"'{call.name}' timed out after {tool.timeout:g}s", started)
    except ToolExecutionError as exc:
        return _error(prepared, str(exc), started)
    except Exception as exc:
        log.info("tool %r raised", call.name, exc_info=True)  # the model reads one line
        return _error(prepared, f"{type(exc).__name__}: {_message(exc)}", started)
    items: tuple[dict[str, Any], ...] = ()
    if isinstance(value, ToolOutput):
        items = value.items
        value = value.text
    try:
        content = render(value)
    except Exception as exc:  # a value that cannot be shown (too deep, a broken __str__)
        return _error(prepared, f"the result of '{call.name}' cannot be shown: {exc!r:.200}")
    if len(content) > max_chars:
        dropped = len(content) - max_chars
        content = content[:max_chars] + f"\n[truncated: {dropped} more characters]"
    return ToolResult(call.id, call.name, content, None, time.perf_counter() - started, items)


async def _contained(awaitable: Any) -> Any:
    """Await a tool's coroutine; `sys.exit()` inside it must not stop the event loop
    (asyncio re-raises SystemExit out of any task that lets it escape)."""
    try:
        return await awaitable
    except SystemExit as exc:
        raise RuntimeError(f"the tool raised SystemExit: {exc}") from None


def _message(exc: BaseException, limit: int = 2000) -> str:
    """`str(exc)`, cut at `limit` characters (a message that repr()s a huge argument stays
    readable) and safe from an exception whose `__str__` itself raises."""
    try:
        text = str(exc)
    except Exception:
        return "(the exception's message could not be read)"
    return text if len(text) <= limit else text[:limit] + "..."


def _error(prepared: PreparedCall, message: str, started: float | None = None) -> ToolResult:
    call = prepared.call
    t0 = prepared.started if started is None else started
    return ToolResult(call.id, call.name, f"Error: {message}", message, time.perf_counter() - t0)


def render(value: Any) -> str:
    """A return value as text for the model: strings as they are, the rest compact JSON."""
    if isinstance(value, str):
        return value
    from pydantic import BaseModel
    from pydantic_core import PydanticSerializationError, to_jsonable_python

    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    try:
        data = to_jsonable_python(value)
    except PydanticSerializationError:
        return str(value)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


async def run_in_thread(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """`asyncio.to_thread`, but on a fresh daemon thread.

    A sync tool that hangs cannot be killed; on the default executor it would also make
    `asyncio.run()` wait for it at shutdown and, a few hangs later, starve every other
    sync tool of workers. A daemon thread is simply abandoned when its timeout fires.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def target() -> None:
        try:
            result = context.run(func, *args, **kwargs)
        except BaseException as exc:  # delivered to the awaiting task, not lost
            if not isinstance(exc, Exception):  # sys.exit() in a tool must not end the agent
                exc = RuntimeError(f"the tool raised {type(exc).__name__}: {exc}")
            outcome: tuple[Any, BaseException | None] = (None, exc)
        else:
            outcome = (result, None)
        with contextlib.suppress(RuntimeError):  # the loop closed: the call was abandoned
            loop.call_soon_threadsafe(settle, *outcome)

    name = getattr(func, "__name__", "tool")
    threading.Thread(target=target, name=f"edge-agent-tool-{name}", daemon=True).start()
    return await future
