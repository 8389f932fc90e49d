"""`edge-agent serve`: an OpenAI-compatible HTTP server over one `ChatModel`.

Clients that already speak OpenAI's API (the `openai` SDK, pydantic-ai, LangChain, Open
WebUI, editors, edge-agent's own `RemoteChatModel`) get what the in-process agent gets:
tool calls and `json_schema` answers decoded under a grammar, so every call's arguments
validate against its tool's parameters and every answer against its schema.

The server sits beside the CLI: it drives a model through `agent.engines` (the one
decode path), and nothing below it imports it. Modules:

* `config`: the server's settings;
* `protocol`: the request bodies (pydantic), checked before anything runs;
* `translate`: a chat request as the engine's `StepRequest`;
* `turns`: the exact text of assistant turns this server generated, so that a
  conversation sent back extends its prompt cache;
* `scheduler`: one generation at a time, a bounded queue, cancellation;
* `generation`: one completion on the model, checked before it leaves;
* `stops`: `stop` sequences over streamed text;
* `responses`: completion, chunk and usage bodies in OpenAI's shapes;
* `errors`: OpenAI's error shape with the right status;
* `embeddings`: `/v1/embeddings` with the MiniLM encoder;
* `app`: the Starlette routes; `serve`: the bind policy, uvicorn, Ctrl+C, and a server
  on a thread of this process (`serve_in_background`).
"""

from __future__ import annotations

from agent.server.config import ServerConfig

__all__ = ["ServerConfig"]
