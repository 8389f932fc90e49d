"""Rendering a Hugging Face style chat template without transformers.

GGUF files carry their chat template as Jinja text (`tokenizer.chat_template`); the
llama.cpp runtime renders it with the same environment transformers'
`apply_chat_template` uses (sandboxed, `trim_blocks`/`lstrip_blocks`, `tojson`,
`raise_exception`, `strftime_now`), so a model sees the same prompt on either engine.
"""

from __future__ import annotations

import json
import time
from functools import lru_cache
from typing import Any

from agent.errors import UserError


@lru_cache(maxsize=8)
def _compiled(template: str) -> Any:
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    def tojson(value: Any, ensure_ascii: bool = False, indent: Any = None,
               separators: Any = None, sort_keys: bool = False) -> str:  # fmt: skip
        return json.dumps(
            value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
            sort_keys=sort_keys,
        )  # fmt: skip

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: time.strftime(fmt)
    return env.from_string(template)


def render_chat(
    template: str,
    messages: list[dict[str, Any]],
    *,
    tools: list[dict[str, Any]] | None = None,
    add_generation_prompt: bool = True,
    bos_token: str = "",
    eos_token: str = "",
) -> str:
    """`messages` (and `tools`) rendered with `template`, as transformers would."""
    from jinja2.exceptions import TemplateError

    try:
        return str(
            _compiled(template).render(
                messages=messages,
                tools=tools,
                add_generation_prompt=add_generation_prompt,
                bos_token=bos_token,
                eos_token=eos_token,
            )
        )
    except TemplateError as exc:
        raise UserError(f"the model's chat template failed: {exc}") from None
