"""Pieces shared by the CLI commands: parser, model loading, input reading."""

from __future__ import annotations

import argparse
import logging
import math
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import agent.limits as limits
from agent.errors import UserError
from agent.models.registry import DEFAULT_MODEL

# Model code (MLX, mlx-lm) loads inside the commands that use it: `--help` and argument
# errors answer at once.
if TYPE_CHECKING:
    from agent.engines.base import ChatModel
    from agent.sampling import SamplingParams
    from agent.token_runtime import TokenRuntime as Model
    from agent.tracing import Tracing

EXIT_OK = 0
EXIT_USER_ERROR = 2
EXIT_GUARD_STOP = 3


class CliParser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_model_arg(
    parser: argparse.ArgumentParser, default: str = DEFAULT_MODEL, remote: bool = True
) -> None:
    parser.add_argument(
        "--model",
        "-m",
        default=default,
        help="built-in name (tiny, tiny-large-vocab, smollm2), MLX model directory, "
        "Hugging Face repo id"
        + (", or openai:http://host:port/v1#model-name for an OpenAI-compatible server"
           if remote else "")
        + f" (default: {default})",
    )  # fmt: skip
    parser.add_argument(
        "--engine",
        default="auto",
        choices=("auto", "mlx", "llama.cpp"),
        help="the local engine: mlx, llama.cpp (GGUF; `edge-agent engines` says whether it "
        "is installed), or auto (MLX on Apple silicon, llama.cpp elsewhere when installed "
        "and the model has a GGUF)",
    )
    if remote:
        parser.add_argument(
            "--base-url",
            default=None,
            metavar="URL",
            help="an OpenAI-compatible server (e.g. http://localhost:8000/v1); --model is "
            "then the model's name there; the API key comes from OPENAI_API_KEY or "
            "EDGE_AGENT_API_KEY",
        )


def add_sampling_args(parser: argparse.ArgumentParser) -> None:
    """Sampling flags; unset ones take the model's recommended values."""
    parser.add_argument(
        "--temp",
        type=finite_float,
        default=None,
        help="temperature (0: greedy; default: the model's)",
    )
    parser.add_argument(
        "--top-p",
        type=finite_float,
        default=None,
        help="sample from the smallest set of tokens whose probabilities add up to P",
    )
    parser.add_argument(
        "--min-p",
        type=finite_float,
        default=None,
        help="drop tokens less likely than P times the most likely one",
    )
    parser.add_argument(
        "--repetition-penalty",
        type=finite_float,
        default=None,
        help="penalise tokens seen in the last 64 by this factor (1: off)",
    )
    parser.add_argument(
        "--seed", type=seed_int, default=None, help=f"random seed (0 to {MAX_SEED_TEXT})"
    )


def sampling_from_args(args: argparse.Namespace, model: Model | ChatModel) -> SamplingParams:
    return model.default_sampling.with_overrides(
        temperature=args.temp,
        top_p=args.top_p,
        min_p=args.min_p,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
    )


MAX_SEED_TEXT = str(2**32 - 1)  # agent.sampling.MAX_SEED (sampling imports MLX lazily)


def finite_float(text: str) -> float:
    """argparse type of every float option: a finite number (NaN and infinity parse as
    floats, pass every range check, and then break sampling or run forever)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got '{text}'")
    return value


def seed_int(text: str) -> int:
    """argparse type of --seed: a whole number from 0 to 2**32 - 1 (llama.cpp's range)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if not 0 <= value <= int(MAX_SEED_TEXT):
        raise argparse.ArgumentTypeError(
            f"expected a whole number from 0 to {MAX_SEED_TEXT}, got {value}"
        )
    return value


def bounded_text(text: str) -> str:
    """argparse type of a text option: at most `limits.MAX_TEXT_BYTES` (it is tokenized)."""
    try:
        limits.check_text(text, "the text")
    except limits.InputLimitError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def load_engine(args: argparse.Namespace) -> ChatModel:
    """The engine the command's --model (and --base-url) name: a server is not loaded,
    a local model is, with progress on stderr."""
    from agent.engines import is_remote_spec, remote_model

    base_url = getattr(args, "base_url", None)
    if base_url is not None or is_remote_spec(args.model):
        return remote_model(args.model, base_url=base_url)
    from agent.engines.local import LocalChatModel

    engine = LocalChatModel.for_model(load_with_progress(args.model, args.engine))
    check_max_tokens(args, engine.context_length)
    return engine


def check_max_tokens(args: argparse.Namespace, context_length: int) -> None:
    """--max-tokens above a local model's context can never be used: once a run's
    budget was 1e20 tokens and it went on until killed. (A server's context is not
    known here, so a remote model is not checked.)"""
    max_tokens = getattr(args, "max_tokens", None)
    if isinstance(max_tokens, int) and max_tokens > context_length:
        raise UserError(
            f"--max-tokens {max_tokens} is more than the model's context of "
            f"{context_length} tokens; pass --max-tokens {context_length} or less"
        )


def load_with_progress(spec: str, engine: str = "auto") -> Model:
    from agent.loader import load_model
    from agent.progress import console_progress

    with console_progress() as progress:
        return load_model(spec, progress, engine=engine)


def read_text_arg(value: str | None, what: str) -> str:
    """`-` (or nothing, when stdin is piped) reads stdin; anything else is the text.

    Both are bounded by `limits.MAX_TEXT_BYTES` before anything tokenizes them: stdin is
    read only up to one byte past the limit, so 45 MB piped in costs 1 MB, not 7 GB.
    """
    if value is None or value == "-":
        if value is None and sys.stdin.isatty():
            raise UserError(f"no {what} given: pass it as an argument or pipe it on stdin")
        return read_stdin(what)
    limits.check_text(value, f"the {what}")
    return value


def read_stdin(what: str, limit: int = limits.MAX_TEXT_BYTES) -> str:
    """At most `limit` bytes of UTF-8 from stdin: InputLimitError above, UserError if not
    UTF-8 (a tokenizer fed undecodable bytes fails with a TypeError deep inside)."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # stdin replaced by a text stream (tests, embedding apps)
        text = sys.stdin.read(limit + 1)
        limits.check_text(text, f"the {what} on stdin", limit)
        return text
    data = buffer.read(limit + 1)
    if len(data) > limit:  # the rest is never read, so its size is unknown
        raise limits.too_large(f"the {what} on stdin", None, limit)
    return decode_utf8(data, f"the {what} on stdin")


def decode_utf8(data: bytes, what: str) -> str:
    """`data` as text, or a one-line UserError naming the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{what} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "convert it first, e.g. with `iconv -t UTF-8`"
        ) from None


def read_file_arg(path: str, what: str, limit: int = limits.MAX_TEXT_BYTES) -> str:
    """A UTF-8 text file, at most `limit` bytes; special files are refused by name (a FIFO
    would block the read, a device never end)."""
    p = Path(path).expanduser()
    try:
        st = p.stat()
        if stat.S_ISDIR(st.st_mode):
            raise UserError(f"{what} '{path}' is a directory, expected a file")
        if not stat.S_ISREG(st.st_mode):
            raise UserError(
                f"{what} '{path}' is {limits.special_file_kind(st.st_mode)}, not a regular file; "
                "pipe it on stdin instead (- reads stdin)"
            )
        if st.st_size > limit:
            raise limits.too_large(f"{what} '{path}'", st.st_size, limit)
        with p.open("rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:  # grew since stat
            raise limits.too_large(f"{what} '{path}'", None, limit)
    except FileNotFoundError:
        raise UserError(f"{what} '{path}' does not exist") from None
    except IsADirectoryError:
        raise UserError(f"{what} '{path}' is a directory, expected a file") from None
    except OSError as exc:
        raise UserError(f"cannot read {what} '{path}': {exc.strerror}") from None
    return decode_utf8(data, f"{what} '{path}'")


def add_agent_args(p: argparse.ArgumentParser) -> None:
    """The agent flags `run`, `chat` and `demo` share."""
    p.add_argument("--index", default=None, metavar="DIR", help="search this index (rag_search)")
    p.add_argument(
        "--tool",
        action="append",
        default=[],
        metavar="NAME",
        help="a tool to enable: a built-in (calculator, http_get, read_file, list_dir, now) "
        "or one defined in --tools-module (repeat for several)",
    )
    p.add_argument(
        "--tools-module",
        action="append",
        default=[],
        metavar="FILE.py",
        help="import a Python file and register every @tool in it",
    )
    p.add_argument("--system", type=bounded_text, default=None, help="a system prompt")
    p.add_argument("--max-steps", type=positive_int, default=8, help="model steps per answer")
    p.add_argument(
        "--max-tokens",
        type=positive_int,
        default=4096,
        help="tokens the model may generate per answer, over all its steps (default 4096)",
    )
    add_sampling_args(p)


def add_trace_args(p: argparse.ArgumentParser) -> None:
    """`--trace FILE` and `--trace-content` (agent.tracing)."""
    p.add_argument(
        "--trace",
        default=None,
        metavar="FILE",
        help="write every OpenTelemetry span (run, model step, tool call, retrieval) to "
        "FILE, one JSON object a line; needs edge-agent[otel]. Without it, "
        "OTEL_EXPORTER_OTLP_ENDPOINT sends spans to a collector",
    )
    p.add_argument(
        "--trace-content",
        action="store_true",
        help="record prompts, answers, tool arguments and results in the spans (off by "
        "default; also OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true)",
    )


@contextmanager
def tracing_from_args(args: argparse.Namespace) -> Iterator[Tracing]:
    """The command's tracing: `--trace FILE`, else a collector named by the standard
    OTEL_EXPORTER_OTLP_* variables, else the global (no-op) providers. Spans are
    flushed when the command ends. A bad path or a missing SDK fails here, before any
    model loads."""
    from agent.tracing import INSTALL_HINT, Tracing
    from agent.tracing.export import build_tracing, endpoint_from_env, sdk_available

    content = True if args.trace_content else None
    if args.trace is not None:
        tracing = build_tracing(file=args.trace, capture_content=content, what="--trace")
    elif endpoint_from_env() and sdk_available():
        tracing = build_tracing(capture_content=content, what="OTEL_EXPORTER_OTLP_ENDPOINT")
        # A collector that is down: the exporter's final "Failed to export" line, not a
        # warning for every retry.
        logging.getLogger("opentelemetry.exporter.otlp").setLevel(logging.ERROR)
    else:
        if endpoint_from_env():
            print(
                "edge-agent: note: OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry "
                f"SDK is not installed, so no spans are sent ({INSTALL_HINT})",
                file=sys.stderr,
            )
        yield Tracing(capture_content=content)
        return
    try:
        yield tracing
    finally:
        tracing.shutdown()
