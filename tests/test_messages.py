"""Chat messages as typed objects (agent.messages): one serializer each way, used by the
agent loop, the session store, the engines and the server."""

from __future__ import annotations

import json
import sqlite3

import pytest
from openai_stub import StubReply, StubServer, running

from agent import Agent
from agent.engines.remote import RemoteChatModel
from agent.engines.scripted import Reply, ScriptedModel
from agent.errors import UserError
from agent.messages import (
    AssistantMessage,
    MessageError,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
    as_messages,
    message_from_dict,
)
from agent.sampling import SamplingParams
from agent.server.errors import APIError
from agent.server.protocol import ChatCompletionRequest, parse_body
from agent.server.translate import plan_chat
from agent.server.turns import TurnMemory
from agent.sessions import SCHEMA_VERSION, SessionDataError, SessionStore
from agent.tool_parser import CALL_END, CALL_START
from tools import tool

EVERY_KIND = [
    SystemMessage("Be brief."),
    UserMessage("Weather in Oslo?"),
    AssistantMessage("<think>look it up</think>"),
    AssistantMessage("", (ToolCall("call_1", "weather", {"city": "Oslo", "days": [1, 2]}),)),
    AssistantMessage("Two calls:", (ToolCall("a", "f", {}), ToolCall("b", "g", {"x": None}))),
    ToolMessage("call_1", "Oslo: 21c", "weather"),
    ToolMessage("call_2", "Error: no such city", "weather", error="no such city"),
    ToolMessage("call_3", "from a client that sends no name"),
]


@tool
def weather(city: str) -> str:
    """Weather in a city."""
    return f"{city}: 21c"


# ------------------------------------------------------------------ the serializer
@pytest.mark.parametrize("message", EVERY_KIND, ids=lambda m: type(m).__name__)
def test_every_kind_round_trips_through_its_dict(message):
    data = message.to_dict()
    assert data["role"] == message.role
    assert json.loads(json.dumps(data)) == data  # plain JSON, as stored and sent
    assert message_from_dict(data) == message


def test_the_dicts_are_openais_chat_shape():
    call = EVERY_KIND[3].to_dict()
    assert call == {
        "role": "assistant",
        "content": None,  # OpenAI's null beside calls
        "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "weather", "arguments": '{"city": "Oslo", "days": [1, 2]}'}}],
    }  # fmt: skip
    assert AssistantMessage("").to_dict() == {"role": "assistant", "content": ""}
    assert EVERY_KIND[5].to_dict() == {
        "role": "tool", "tool_call_id": "call_1", "content": "Oslo: 21c", "name": "weather",
    }  # fmt: skip
    assert EVERY_KIND[6].to_dict()["error"] == "no such city"


def test_reading_accepts_what_clients_send():
    # Arguments as an object (Hugging Face style), text parts, unknown keys, null content.
    message = message_from_dict({
        "role": "assistant", "content": None, "refusal": None,
        "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {"a": 1}}}],
    })  # fmt: skip
    assert message == AssistantMessage("", (ToolCall("c", "f", {"a": 1}),))
    parts = {
        "role": "user",
        "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
    }
    assert message_from_dict(parts) == UserMessage("ab")
    empty = {
        "role": "assistant",
        "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": ""}}],
    }
    assert message_from_dict(empty) == AssistantMessage("", (ToolCall("c", "f", {}),))


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (
            {"role": "robot", "content": "hi"},
            "message 2 has an unknown role 'robot': use one of system, user, assistant, tool",
        ),
        ({"content": "hi"}, "message 2 has an unknown role None"),
        (
            {"role": "tool", "content": "21c"},
            "message 2 is a tool result without a tool_call_id: give the id of the call it answers",
        ),
        (
            {"role": "tool", "content": "21c", "tool_call_id": ""},
            "message 2 is a tool result without",
        ),
        (
            {
                "role": "assistant",
                "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "[1, 2]"}}],
            },
            "message 2, tool call 0 ('f'): the arguments are list, not a JSON object",
        ),
        (
            {
                "role": "assistant",
                "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{oops"}}],
            },
            "message 2, tool call 0 ('f'): the arguments are not JSON",
        ),
        (
            {"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]},
            "message 2, tool call 0 has no id",
        ),
        (
            {"role": "assistant", "tool_calls": [{"id": "c1", "name": "f"}]},
            "message 2, tool call 0 is not",
        ),
        ({"role": "assistant", "tool_calls": "f()"}, "message 2: tool_calls is not a list"),
        ({"role": "user", "content": 42}, "message 2: content is int, not text"),
        ({"role": "user", "content": [{"type": "image_url"}]}, "message 2: content has a part"),
        (
            {"role": "tool", "content": "x", "tool_call_id": "c", "error": 1},
            "message 2: error is not a string",
        ),
        (["user", "hi"], "message 2 is not an object (list)"),
    ],
)
def test_a_bad_message_is_a_clear_error_naming_it(data, problem):
    with pytest.raises(MessageError) as info:
        message_from_dict(data, "message 2")
    assert str(info.value).startswith(problem)
    assert isinstance(info.value, UserError)  # the CLI prints one line, exit code 2


def test_a_conversation_mixes_typed_messages_and_dicts():
    typed = UserMessage("hi")
    assert as_messages([typed, {"role": "assistant", "content": "hello"}]) == [
        typed,
        AssistantMessage("hello"),
    ]
    with pytest.raises(MessageError, match=r"^history\[1\] has an unknown role 'bot'"):
        as_messages([typed, {"role": "bot", "content": ""}], "history")
    with pytest.raises(MessageError, match="not a list of messages"):
        as_messages({"role": "user", "content": "hi"})
    with pytest.raises(MessageError, match=r"^messages is not a list of messages \(NoneType\)"):
        as_messages(None)


# ------------------------------------------------------------------ the agent
def test_an_agent_runs_on_typed_messages():
    model = ScriptedModel([Reply(calls=[("weather", {"city": "Oslo"})]), Reply(text="21c.")])
    agent = Agent(model, [weather])
    result = agent.run("Weather in Oslo?")
    assert result.content == "21c."
    user, calling, answered, final = agent.messages
    assert user == UserMessage("Weather in Oslo?")
    assert isinstance(calling, AssistantMessage)
    (call,) = calling.tool_calls
    assert (call.name, call.arguments) == ("weather", {"city": "Oslo"})
    assert answered == ToolMessage(call.id, "Oslo: 21c", "weather")
    assert final == AssistantMessage("21c.")
    # The engine was handed the same typed conversation.
    assert list(model.requests[1].messages) == agent.messages[:3]


def test_an_agent_continues_a_conversation_given_as_dicts():
    model = ScriptedModel(["Still 21c."])
    agent = Agent(model, [weather])
    agent.messages = [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "name": "weather", "content": "Oslo: 21c"},
    ]  # fmt: skip
    assert isinstance(agent.messages[1], AssistantMessage)
    assert agent.run("And now?").content == "Still 21c."
    assert model.requests[0].messages[2] == ToolMessage("c1", "Oslo: 21c", "weather")
    with pytest.raises(MessageError, match=r"^the agent's messages\[0\] has an unknown role"):
        agent.messages = [{"role": "bot", "content": "?"}]


def test_history_from_an_untrusted_tool_still_guards_the_agent():
    @tool(untrusted_results=True)
    def fetch(url: str) -> str:
        """Fetch a page."""
        return ""

    agent = Agent(ScriptedModel(["ok"]), [fetch])
    assert not agent.read_untrusted
    agent.messages = [{"role": "tool", "tool_call_id": "c", "name": "fetch", "content": "..."}]
    assert agent.read_untrusted
    agent.reset()
    assert agent.messages == [] and not agent.read_untrusted


# ------------------------------------------------------------------ sessions
def test_a_session_gives_back_the_typed_messages_it_was_given(data_dir):
    model = ScriptedModel(
        [Reply(calls=[("weather", {"city": "Oslo"}), ("weather", {"town": "Lima"})]),
         Reply(text="Oslo is 21c.")]
    )  # fmt: skip
    agent = Agent(model, [weather], session="trip")
    agent.run("Weather in Oslo and Lima?")
    failed = [m for m in agent.messages if isinstance(m, ToolMessage) and m.error]
    assert len(failed) == 1  # the call with the wrong argument name
    reopened = SessionStore().open("trip").history()
    assert reopened == agent.messages
    assert Agent(ScriptedModel([]), [weather], session="trip").messages == agent.messages
    # The row is the message's dict: role and content in columns, the rest beside the
    # step's metadata.
    (turn,) = SessionStore().open("trip").turns()
    calling = turn.messages[1]
    assert calling.meta["step"] == 1 and "tool_calls" not in calling.meta
    assert calling.message == agent.messages[1]


def test_a_stored_message_that_is_not_a_valid_one_names_the_way_out(tmp_path):
    store = SessionStore(tmp_path / "s.sqlite3")
    session = store.create("odd")
    turn = session.begin_turn()
    session.add_message(turn, UserMessage("hi"))
    session.add_message(turn, ToolMessage("c1", "21c", "weather"))
    session.end_turn(turn, None)
    with sqlite3.connect(store.path) as db:  # a row written by hand, without its call id
        db.execute('UPDATE messages SET meta = \'{"name": "weather"}\' WHERE seq = 2')
    with pytest.raises(SessionDataError) as info:
        store.open("odd").history()
    assert str(info.value).startswith(
        "session 'odd' has an unreadable message (turn 1, message 2: the message is a tool "
        "result without a tool_call_id"
    )
    assert "edge-agent sessions repair odd" in str(info.value)
    assert store.repair("odd") == ("odd", 1)
    assert store.open("odd").history() == [UserMessage("hi")]


VERSION_2 = """
CREATE TABLE sessions (id TEXT PRIMARY KEY, created REAL NOT NULL, updated REAL NOT NULL,
    title TEXT NOT NULL DEFAULT '', model TEXT NOT NULL DEFAULT '');
CREATE TABLE turns (session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    turn INTEGER NOT NULL, status TEXT NOT NULL, stopped_by TEXT, started REAL NOT NULL,
    ended REAL, PRIMARY KEY (session_id, turn));
CREATE TABLE messages (session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    turn INTEGER NOT NULL, seq INTEGER NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}', created REAL NOT NULL,
    PRIMARY KEY (session_id, turn, seq));
CREATE INDEX sessions_by_update ON sessions(updated);
INSERT INTO sessions VALUES ('v2', 1.0, 2.0, 'Weather?', 'stub');
INSERT INTO turns VALUES ('v2', 1, 'done', NULL, 1.0, 2.0);
INSERT INTO messages VALUES ('v2', 1, 1, 'user', 'Weather?', '{}', 1.0);
INSERT INTO messages VALUES ('v2', 1, 2, 'assistant', '',
    '{"step": 1, "tool_calls": [{"id": "call_7", "type": "function",
      "function": {"name": "weather", "arguments": "{\\"city\\": \\"Oslo\\"}"}}]}', 2.0);
INSERT INTO messages VALUES ('v2', 1, 3, 'tool', 'Oslo: 21c',
    '{"call_id": "call_7", "name": "weather", "error": null}', 2.0);
INSERT INTO messages VALUES ('v2', 1, 4, 'tool', 'x', '{broken', 2.0);
PRAGMA user_version = 2;
"""


def test_a_version_2_database_is_migrated_to_the_serializers_keys(data_dir, capsys):
    from agent.cli.main import main

    data_dir.mkdir(parents=True)
    path = data_dir / "sessions.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(VERSION_2)
    assert SCHEMA_VERSION == 3
    assert main(["sessions", "repair", "v2"]) == 0  # opening migrates; the broken row goes
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 3
    history = SessionStore(path).open("v2").history()
    assert history == [
        UserMessage("Weather?"),
        AssistantMessage("", (ToolCall("call_7", "weather", {"city": "Oslo"}),)),
        ToolMessage("call_7", "Oslo: 21c", "weather"),
    ]
    capsys.readouterr()
    assert main(["sessions", "show", "v2", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["turns"][0]["messages"]
    assert shown[2] == {"role": "tool", "tool_call_id": "call_7", "content": "Oslo: 21c",
                        "name": "weather", "meta": {}}  # fmt: skip
    assert shown[1]["meta"] == {"step": 1}


# ------------------------------------------------------------------ engines, server
def test_a_local_models_turns_reach_a_server_with_matching_call_ids():
    """A conversation a local model began (calls inside its text) continued on a
    server: the calls become `tool_calls` with the ids the results answer."""
    block = f'{CALL_START}[{{"name": "weather", "arguments": {{"city": "Oslo"}}}}]{CALL_END}'
    with running(StubServer([StubReply(text="Still 21c.")])) as stub:
        agent = Agent(RemoteChatModel(stub.url, "stub"), [weather])
        agent.messages = [
            UserMessage("Weather in Oslo?"),
            AssistantMessage(block),
            ToolMessage("call_abc", "Oslo: 21c", "weather"),
        ]
        assert agent.run("And now?").content == "Still 21c."
    sent = stub.requests[0]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "user"]
    assert sent[2]["tool_calls"][0]["id"] == "call_abc" == sent[3]["tool_call_id"]
    assert json.loads(sent[2]["tool_calls"][0]["function"]["arguments"]) == {"city": "Oslo"}
    assert sent[3] == {"role": "tool", "tool_call_id": "call_abc", "content": "Oslo: 21c"}


def test_a_client_message_that_is_not_valid_is_a_400_naming_it():
    body = {"messages": [{"role": "user", "content": "hi"},
                         {"role": "tool", "content": "21c"}]}  # fmt: skip
    with pytest.raises(APIError) as info:
        plan_chat(parse_body(ChatCompletionRequest, body), [], SamplingParams(), TurnMemory())
    assert info.value.param == "messages.1"
    assert "message 1 is a tool result without a tool_call_id" in str(info.value)
