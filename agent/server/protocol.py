"""Request bodies of the OpenAI API, as far as this server honours them.

Parsed with pydantic so that a malformed request is a 400 naming the field (`param`)
before anything runs. Fields OpenAI defines that change nothing here (`user`,
`metadata`, `store`, ...) are accepted and ignored, as other compatible servers do;
fields that would change the output and are not supported (`n` > 1, `logprobs`,
frequency and presence penalties) are refused, never silently dropped. LFM2's
sampling (`min_p`, `repetition_penalty`, `top_k`) is accepted as an extension, with
the names vLLM and llama.cpp's server use.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.server.errors import APIError, bad_request


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ContentPart(_Body):
    type: str
    text: str | None = None


class FunctionCall(_Body):
    name: str
    arguments: str = "{}"


class ToolCall(_Body):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(_Body):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None


class FunctionDefinition(_Body):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Body):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(_Body):
    name: str


class NamedToolChoice(_Body):
    type: Literal["function"]
    function: NamedFunction


class JsonSchemaFormat(_Body):
    name: str = "answer"
    description: str | None = None
    json_schema: dict[str, Any] | bool = Field(default=True, alias="schema")
    strict: bool | None = None


class TextFormat(_Body):
    type: Literal["text"]


class JsonObjectFormat(_Body):
    type: Literal["json_object"]


class JsonSchemaResponseFormat(_Body):
    type: Literal["json_schema"]
    json_schema: JsonSchemaFormat


ResponseFormat = Annotated[
    TextFormat | JsonObjectFormat | JsonSchemaResponseFormat, Field(discriminator="type")
]


class StructuredOutputs(_Body):
    """vLLM's `structured_outputs` (vLLM >= 0.12): the wire form for what OpenAI's
    `response_format` cannot say, a regex, a grammar or a choice. Outlines'
    `from_vllm` sends every output type this way, so an Outlines program pointed at
    `edge-agent serve` keeps its regexes and grammars. Exactly one of `json`, `regex`,
    `grammar` (Lark) and `choice` is given; `whitespace_pattern` is accepted and
    ignored (answers are JSON without whitespace between tokens)."""

    json_schema: dict[str, Any] | bool | None = Field(default=None, alias="json")
    regex: str | None = None
    grammar: str | None = None
    choice: list[str] | None = None
    whitespace_pattern: str | None = None


class StreamOptions(_Body):
    include_usage: bool = False


class ChatCompletionRequest(_Body):
    """`POST /v1/chat/completions`."""

    model: str = ""
    messages: list[Message] = Field(min_length=1)
    tools: list[Tool] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool = True
    response_format: ResponseFormat | None = None
    structured_outputs: StructuredOutputs | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    # LFM2's recommended sampling, as vLLM and llama.cpp's server accept it.
    min_p: float | None = Field(default=None, ge=0, lt=1)
    top_k: int | None = Field(default=None, ge=0)
    repetition_penalty: float | None = Field(default=None, gt=0)
    # Refused unless neutral (see check_supported).
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    logit_bias: dict[str, float] | None = None

    def stop_sequences(self) -> tuple[str, ...]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return tuple(s for s in stops if s)

    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class EmbeddingRequest(_Body):
    """`POST /v1/embeddings`."""

    model: str = ""
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None


def parse_body(model: type[BaseModel], body: Any) -> Any:
    """`body` as `model`, or a 400 naming the first field that is wrong."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        # The deepest error: of a union's branches, the one the client was writing.
        error = max(exc.errors(), key=lambda e: len(e["loc"]))
        loc = list(error["loc"])
        if loc[:2] == ["response_format", "json_schema"]:
            del loc[1]  # the discriminator's tag, not a field
        param = ".".join(str(p) for p in loc if not _is_union_tag(p))
        raise bad_request(f"invalid '{param}': {error['msg']}", param=param) from None


def _is_union_tag(part: Any) -> bool:
    """Pydantic names the union branch it tried in an error's location (`str`,
    `list[str]`, `NamedToolChoice`); a client's field path has no such part."""
    return isinstance(part, str) and ("[" in part or part in _BRANCH_TAGS)


def check_supported(request: ChatCompletionRequest) -> None:
    """Refuse what would change the output and is not supported."""
    if request.n != 1:
        raise bad_request("only n=1 is supported", "n", "unsupported_parameter")
    for name in ("frequency_penalty", "presence_penalty"):
        if getattr(request, name):
            raise bad_request(
                f"{name} is not supported; use repetition_penalty (LFM2's default is 1.05)",
                name,
                "unsupported_parameter",
            )
    if request.logprobs or request.top_logprobs:
        raise bad_request("logprobs are not supported", "logprobs", "unsupported_parameter")
    if request.logit_bias:
        raise bad_request("logit_bias is not supported", "logit_bias", "unsupported_parameter")
    stops = request.stop_sequences()
    if len(stops) > 4:
        raise bad_request("at most 4 stop sequences", "stop")
    if request.stream_options is not None and not request.stream:
        raise bad_request("stream_options needs stream: true", "stream_options")


def message_text(message: Message) -> str:
    """A message's text; content parts other than text are refused."""
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        if part.type != "text" or part.text is None:
            raise bad_request(
                f"content parts of type '{part.type}' are not supported: this model reads "
                "text only",
                "messages",
                "unsupported_content",
            )
        texts.append(part.text)
    return "".join(texts)


_BRANCH_TAGS = {"str", "int", "float", "bool", "dict", "list", "NamedToolChoice"}

__all__ = [
    "APIError",
    "ChatCompletionRequest",
    "EmbeddingRequest",
    "Message",
    "Tool",
    "check_supported",
    "message_text",
    "parse_body",
]
