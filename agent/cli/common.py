"""Pieces shared by the CLI commands: parser, model loading, input reading."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from agent.errors import UserError
from agent.models.registry import DEFAULT_MODEL

# Model code (MLX, mlx-lm) loads inside the commands that use it: `--help` and argument
# errors answer at once.
if TYPE_CHECKING:
    from agent.engines.base import ChatModel
    from agent.sampling import SamplingParams
    from agent.token_runtime import TokenRuntime as Model

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
        "--temp", type=float, default=None, help="temperature (0: greedy; default: the model's)"
    )
    parser.add_argument(
        "--top-p",
        type=float,
        default=None,
        help="sample from the smallest set of tokens whose probabilities add up to P",
    )
    parser.add_argument(
        "--min-p",
        type=float,
        default=None,
        help="drop tokens less likely than P times the most likely one",
    )
    parser.add_argument(
        "--repetition-penalty",
        type=float,
        default=None,
        help="penalise tokens seen in the last 64 by this factor (1: off)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed")


def sampling_from_args(args: argparse.Namespace, model: Model | ChatModel) -> SamplingParams:
    return model.default_sampling.with_overrides(
        temperature=args.temp,
        top_p=args.top_p,
        min_p=args.min_p,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
    )


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

    return LocalChatModel.for_model(load_with_progress(args.model, args.engine))


def load_with_progress(spec: str, engine: str = "auto") -> Model:
    from agent.loader import load_model
    from agent.progress import console_progress

    with console_progress() as progress:
        return load_model(spec, progress, engine=engine)


def read_text_arg(value: str | None, what: str) -> str:
    """`-` (or nothing, when stdin is piped) reads stdin; anything else is the text."""
    if value is None or value == "-":
        if value is None and sys.stdin.isatty():
            raise UserError(f"no {what} given: pass it as an argument or pipe it on stdin")
        return sys.stdin.read()
    return value


def read_file_arg(path: str, what: str) -> str:
    p = Path(path).expanduser()
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{what} '{path}' does not exist") from None
    except IsADirectoryError:
        raise UserError(f"{what} '{path}' is a directory, expected a file") from None
    except UnicodeDecodeError:
        raise UserError(f"{what} '{path}' is not UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"cannot read {what} '{path}': {exc.strerror}") from None


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
    p.add_argument("--system", default=None, help="a system prompt")
    p.add_argument("--max-steps", type=positive_int, default=8, help="model steps per answer")
    p.add_argument(
        "--max-tokens",
        type=positive_int,
        default=4096,
        help="tokens the model may generate per answer, over all its steps (default 4096)",
    )
    add_sampling_args(p)
