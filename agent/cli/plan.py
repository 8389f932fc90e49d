"""`edge-agent plan`: the memory plan of a model at a context length."""

from __future__ import annotations

import argparse
import json
from typing import Any

from agent.cli.common import add_model_arg, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="estimate the RAM a model needs at a context length")
    add_model_arg(p, remote=False)
    p.add_argument("--context", type=positive_int, default=4096, help="tokens of context")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agent.llamacpp.models import gguf_source

    source = gguf_source(args.model)
    gguf = args.engine == "llama.cpp" or (source is not None and source.kind == "file")
    if gguf:  # a GGUF on llama.cpp (planning needs no engine installed for hub quants)
        from agent.llamacpp.memory_plan import plan_gguf

        plan = plan_gguf(args.model, args.context)
    else:
        from agent.memory_plan import config_for_spec, plan_memory

        config, name = config_for_spec(args.model)
        plan = plan_memory(config, args.context, name)
    if args.json:
        data: dict[str, Any] = {row[0].replace(" ", "_") + "_bytes": row[1] for row in plan.rows()}
        data.update(model=plan.model, context=plan.context, device=plan.device)
        print(json.dumps(data, indent=2))
    else:
        print(plan.table())
    return 0
