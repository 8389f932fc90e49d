"""LFM2's chat format, shared by every model edge-agent builds.

ChatML-style turns (`<|im_start|>role ... <|im_end|>`), the tool list as JSON between
`<|tool_list_start|>` and `<|tool_list_end|>` in the system turn, tool results wrapped in
`<|tool_response_start|>`/`<|tool_response_end|>` inside a `tool` turn. Keeping the
built-in models on the exact format of LFM2-8B-A1B means prompts, cache reuse and
tool-call parsing are exercised the same way in tests as in production.
"""

from __future__ import annotations

LFM2_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|pad|>",
    "<|startoftext|>",
    "<|endoftext|>",
    "<|fim_pre|>",
    "<|fim_mid|>",
    "<|fim_suf|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|tool_list_start|>",
    "<|tool_list_end|>",
    "<|tool_call_start|>",
    "<|tool_call_end|>",
    "<|tool_response_start|>",
    "<|tool_response_end|>",
)

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|im_end|>"
PAD_TOKEN = "<|pad|>"

LFM2_CHAT_TEMPLATE = """\
{{- bos_token -}}
{%- set ns = namespace(system_prompt="") -%}
{%- if messages and messages[0]["role"] == "system" -%}
  {%- set ns.system_prompt = messages[0]["content"] -%}
  {%- set messages = messages[1:] -%}
{%- endif -%}
{%- if tools -%}
  {%- set ns.system_prompt = ns.system_prompt + ("\\n" if ns.system_prompt else "") \
+ "List of tools: <|tool_list_start|>[" -%}
  {%- for tool in tools -%}
    {%- if tool is not string -%}{%- set tool = tool | tojson -%}{%- endif -%}
    {%- set ns.system_prompt = ns.system_prompt + tool -%}
    {%- if not loop.last -%}{%- set ns.system_prompt = ns.system_prompt + ", " -%}{%- endif -%}
  {%- endfor -%}
  {%- set ns.system_prompt = ns.system_prompt + "]<|tool_list_end|>" -%}
{%- endif -%}
{%- if ns.system_prompt -%}
  {{- "<|im_start|>system\\n" + ns.system_prompt + "<|im_end|>\\n" -}}
{%- endif -%}
{%- for message in messages -%}
  {{- "<|im_start|>" + message["role"] + "\\n" -}}
  {%- set content = message["content"] -%}
  {%- if content is not string -%}{%- set content = content | tojson -%}{%- endif -%}
  {%- if message["role"] == "tool" -%}
    {%- set content = "<|tool_response_start|>" + content + "<|tool_response_end|>" -%}
  {%- endif -%}
  {{- content + "<|im_end|>\\n" -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
  {{- "<|im_start|>assistant\\n" -}}
{%- endif -%}
"""
