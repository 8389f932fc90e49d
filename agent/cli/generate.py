"""`edge-agent generate`: stream a completion and its statistics."""

from __future__ import annotations

import argparse
import sys

from agent.cli.common import (
    add_model_arg,
    add_sampling_args,
    bounded_text,
    check_max_tokens,
    load_engine,
    load_with_progress,
    positive_int,
    read_text_arg,
    sampling_from_args,
)
from agent.errors import UserError
from agent.messages import Message, SystemMessage, UserMessage


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate text from a prompt, with live stats")
    p.add_argument("prompt", nargs="?", help="the prompt ('-' or omitted: read stdin)")
    add_model_arg(p)
    p.add_argument(
        "--max-tokens", type=positive_int, default=256, help="tokens to generate at most (256)"
    )
    p.add_argument("--system", type=bounded_text, default=None, help="a system message")
    p.add_argument(
        "--raw", action="store_true", help="send the prompt as is, without the chat template"
    )
    add_sampling_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agent.engines import is_remote_spec
    from agent.token_runtime import GenerationResult, TextChunk

    prompt_text = read_text_arg(args.prompt, "prompt")
    if args.base_url is not None or is_remote_spec(args.model):
        return _generate_remote(args, prompt_text)
    model = load_with_progress(args.model, args.engine)
    check_max_tokens(args, model.context_length)
    sampling = sampling_from_args(args, model)
    if args.raw:
        prompt: str | list[dict] = prompt_text
    else:
        turns: list[Message] = [UserMessage(prompt_text)]
        if args.system:
            turns.insert(0, SystemMessage(args.system))
        prompt = [m.to_dict() for m in turns]
    result: GenerationResult | None = None
    for item in model.stream(prompt, max_tokens=args.max_tokens, sampling=sampling):
        if isinstance(item, TextChunk):
            sys.stdout.write(item.text)
            sys.stdout.flush()
        else:
            result = item
    sys.stdout.write("\n")
    assert result is not None
    print(f"[{model.name}] {result.stats.summary()}", file=sys.stderr)
    return 0


def _generate_remote(args: argparse.Namespace, prompt_text: str) -> int:
    """One completion from an OpenAI-compatible server, streamed the same way."""
    import asyncio

    from agent.engines.base import StepRequest, StepResult, TextPiece

    if args.raw:
        raise UserError("--raw sends text without a chat template: it needs a local model")
    model = load_engine(args)
    request = StepRequest(
        system=args.system or "",
        messages=[UserMessage(prompt_text)],
        sampling=sampling_from_args(args, model),
    )

    async def stream() -> StepResult:
        result = None
        async for item in model.stream(model.prepare(request), args.max_tokens):
            if isinstance(item, TextPiece):
                if item.kind == "text":
                    sys.stdout.write(item.text)
                    sys.stdout.flush()
            else:
                result = item
        assert result is not None
        return result

    result = asyncio.run(stream())
    sys.stdout.write("\n")
    print(f"[{model.name}] {result.stats.summary()}", file=sys.stderr)
    return 0
