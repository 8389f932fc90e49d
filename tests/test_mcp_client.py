"""Tools from real MCP servers (written here with the SDK, run as processes): listing,
calling, results, errors, crashes, hangs, name collisions, approval, lifecycle."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Literal

import pytest

from tests.mcp_helpers import command, processes_with, write_server
from tools import ToolCall, ToolRegistry, approve_all, deny_all, tool
from tools.errors import MCPConfigError, MCPStartError
from tools.mcp import MCPServerConfig, load_mcp_config

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")


def call(registry: ToolRegistry, name: str, arguments: dict | None = None, approve=approve_all):
    return registry.execute_sync(ToolCall.new(name, arguments or {}), approve)


@pytest.fixture
def server(tmp_path):
    return write_server(tmp_path)


def test_stdio_tools_are_listed_with_their_schemas_and_called(server):
    with ToolRegistry(mcp_servers=[command(server)]) as registry:
        assert registry.names() == ["add", "whoami", "refuse", "picture", "crash", "hang"]
        add = registry["add"]
        assert add.description == "Add two integers."
        assert add.parameters["properties"]["a"]["type"] == "integer"
        assert add.parameters["required"] == ["a", "b"]
        # The inputSchema is the call grammar's, like any tool's.
        arguments = registry.call_schema("add")["properties"]["arguments"]
        assert arguments["properties"] == {"a": {"type": "integer"}, "b": {"type": "integer"}}
        result = call(registry, "add", {"a": 20, "b": 22})
        assert result.ok and json.loads(result.content) == {"result": 42}  # structured
        who = call(registry, "whoami")
        assert who.ok and who.content.startswith("one ")  # plain text content
        # Arguments are checked against the inputSchema before the server sees them.
        bad = call(registry, "add", {"a": "x", "b": 1})
        assert not bad.ok and "invalid arguments for 'add'" in bad.error


def test_images_and_resources_are_notes_for_the_model_and_raw_items_for_the_app(server):
    with ToolRegistry(mcp_servers=[command(server)]) as registry:
        result = call(registry, "picture")
    assert result.ok
    lines = result.content.splitlines()
    assert lines[0] == "a red pixel"
    assert lines[1] == "[image image/png, 7 bytes: not shown to the model]"
    assert "<file:///notes.txt>" in lines[2] and "11 characters" in lines[2]
    assert "UE5HREFUQQ==" not in result.content  # the image data is not for the model
    image, resource = result.items
    assert image == {"type": "image", "data": "UE5HREFUQQ==", "mimeType": "image/png"}
    assert resource["resource"]["text"] == "hello notes"


def test_is_error_results_are_error_results(server):
    with ToolRegistry(mcp_servers=[command(server)]) as registry:
        result = call(registry, "refuse", {"reason": "policy"})
    assert not result.ok
    assert result.content.startswith("Error: ")
    assert "refuse" in result.error


def test_colliding_names_get_their_server_as_prefix(tmp_path, server):
    @tool
    def whoami() -> str:
        """A local tool with an MCP tool's name."""
        return "local"

    configs = [
        MCPServerConfig("left", command=sys.executable, args=(str(server), "left")),
        MCPServerConfig("right", command=sys.executable, args=(str(server), "right")),
    ]
    with ToolRegistry([whoami], mcp_servers=configs) as registry:
        names = registry.names()
        assert "whoami" in names and "left_whoami" in names and "right_whoami" in names
        assert "left_add" in names and "right_add" in names and "add" not in names
        assert call(registry, "whoami").content == "local"
        assert call(registry, "left_whoami").content.startswith("left ")
        assert call(registry, "right_whoami").content.startswith("right ")
        assert registry.mcp_server_of("right_add") == "right"
        assert registry.mcp_server_of("whoami") is None


def test_a_crashed_server_gives_an_error_result_and_is_restarted_once(server):
    with ToolRegistry(mcp_servers=[command(server)]) as registry:
        first_pid = int(call(registry, "whoami").content.split()[1])
        crashed = call(registry, "crash")
        assert not crashed.ok and "restarted for the next call" in crashed.error
        restarted = call(registry, "whoami")
        assert restarted.ok
        second_pid = int(restarted.content.split()[1])
        assert second_pid != first_pid
        assert processes_with(str(server)) == [second_pid]
        again = call(registry, "crash")
        assert not again.ok and "not restarted again" in again.error
        down = call(registry, "add", {"a": 1, "b": 2})
        assert not down.ok and "not restarted again" in down.error
    assert processes_with(str(server)) == []


def test_a_hanging_call_hits_the_tool_timeout_and_the_server_keeps_serving(server):
    config = MCPServerConfig("slow", command=sys.executable, args=(str(server),), timeout=1)
    with ToolRegistry(mcp_servers=[config]) as registry:
        assert registry["hang"].timeout == 1.0
        hung = call(registry, "hang")
        assert not hung.ok and hung.error == "'hang' timed out after 1s"
        assert json.loads(call(registry, "add", {"a": 1, "b": 1}).content) == {"result": 2}


def test_servers_start_in_parallel_and_stop_without_orphans(tmp_path):
    scripts = [write_server(tmp_path, f"server_{i}.py") for i in range(3)]
    registry = ToolRegistry(mcp_servers=[command(s) for s in scripts])
    try:
        for s in scripts:
            assert len(processes_with(str(s))) == 1
        assert len(registry) == 18  # 6 tools each, all prefixed (every name collides)
    finally:
        registry.close()
    for s in scripts:
        assert processes_with(str(s)) == []


def test_a_server_that_fails_to_start_is_named_and_the_others_are_stopped(tmp_path, server):
    good = MCPServerConfig("good", command=sys.executable, args=(str(server),))
    bad = MCPServerConfig("broken", command=sys.executable, args=("-c", "raise SystemExit(3)"))
    with pytest.raises(MCPStartError, match=r"MCP server 'broken' failed to start"):
        ToolRegistry(mcp_servers=[good, bad])
    assert processes_with(str(server)) == []


def test_a_server_that_never_answers_hits_the_startup_timeout_and_is_killed(tmp_path):
    marker = tmp_path / "silent_marker"
    silent = MCPServerConfig(
        "silent",
        command=sys.executable,
        args=("-c", "import sys, time; time.sleep(600)", str(marker)),
        startup_timeout=1,
    )
    with pytest.raises(MCPStartError, match=r"MCP server 'silent' did not answer within 1s"):
        ToolRegistry(mcp_servers=[silent])
    assert processes_with(str(marker)) == []


def test_a_missing_command_is_a_clear_error():
    with pytest.raises(MCPStartError, match=r"MCP server 'nope'.*no-such-mcp-server"):
        ToolRegistry(mcp_servers=[MCPServerConfig("nope", command="no-such-mcp-server")])


def test_servers_left_running_are_stopped_when_the_program_exits(tmp_path, server):
    script = tmp_path / "forgetful.py"
    script.write_text(
        "import sys\n"
        "from tools import ToolRegistry\n"
        f"registry = ToolRegistry(mcp_servers=[{command(server)!r}])\n"
        "print(len(registry), flush=True)\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(__import__("tests.mcp_helpers").mcp_helpers.ROOT),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "6"
    assert processes_with(str(server)) == []


def test_approval_is_per_server_and_on_unless_trusted(server):
    untrusted = MCPServerConfig("u", command=sys.executable, args=(str(server), "u"))
    trusted = MCPServerConfig("t", command=sys.executable, args=(str(server), "t"), trusted=True)
    with ToolRegistry(mcp_servers=[untrusted, trusted]) as registry:
        assert registry["u_add"].requires_approval and not registry["t_add"].requires_approval
        denied = call(registry, "u_add", {"a": 1, "b": 2}, approve=deny_all)
        assert denied.error == "denied by the user"
        unasked = call(registry, "u_add", {"a": 1, "b": 2}, approve=None)
        assert not unasked.ok and "requires approval" in unasked.error
        assert call(registry, "t_add", {"a": 1, "b": 2}, approve=None).ok


def test_http_servers_get_their_headers(tmp_path, server):
    proc = subprocess.Popen(
        [sys.executable, str(server), "web", "http"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        url = f"http://127.0.0.1:{port}/mcp"
        config = MCPServerConfig("web", url=url, headers={"X-Token": "secret"}, trusted=True)
        with ToolRegistry(mcp_servers=[config]) as registry:
            assert "add" in registry
            assert json.loads(call(registry, "add", {"a": 2, "b": 3}).content) == {"result": 5}
            assert call(registry, "whoami").content.split()[1] == str(proc.pid)
        no_token = MCPServerConfig("web", url=url, startup_timeout=10)
        with pytest.raises(MCPStartError, match=r"MCP server 'web'"):
            ToolRegistry(mcp_servers=[no_token])
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_mcp_servers_config_format(tmp_path):
    path = tmp_path / "mcp.json"
    path.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "files": {"command": "npx", "args": ["-y", "server"], "env": {"K": "v"}},
                    "docs": {"url": "https://example.com/mcp", "headers": {"A": "b"}},
                    "mine": {"command": "python", "args": ["s.py"], "trusted": True,
                             "timeout": 5},
                    "off": {"command": "x", "disabled": True},
                }
            }
        )
    )  # fmt: skip
    files, docs, mine = load_mcp_config(path)
    assert (files.name, files.command, files.args, dict(files.env)) == (
        "files", "npx", ("-y", "server"), {"K": "v"}
    )  # fmt: skip
    assert files.approval and files.transport == "stdio"
    assert (docs.url, dict(docs.headers), docs.transport) == (
        "https://example.com/mcp", {"A": "b"}, "http"
    )  # fmt: skip
    assert not mine.approval and mine.timeout == 5.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "is not valid JSON"),
        ('{"servers": {}}', '"mcpServers"'),
        ('{"mcpServers": {"a": {"comand": "x"}}}', "server 'a': unknown key(s) comand"),
        ('{"mcpServers": {"a": {}}}', "server 'a': give either a command"),
        ('{"mcpServers": {"a": {"command": "x", "args": "y"}}}', "'args' must be a list"),
        ('{"mcpServers": {"a": {"url": "ftp://x"}}}', "url must start with http"),
        ('{"mcpServers": {"a b": {"command": "x"}}}', "must be 1-64 letters"),
        (
            '{"mcpServers": {"a": {"command": "x", "timeout": 0}}}',
            "timeout must be a positive number",
        ),
        ('{"mcpServers": {"a": {"url": "http://x", "type": "sse"}}}', "'sse' is not supported"),
    ],
)
def test_bad_config_files_are_one_clear_error(tmp_path, content, message):
    path = tmp_path / "mcp.json"
    path.write_text(content)
    with pytest.raises(MCPConfigError) as info:
        load_mcp_config(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_command_lines_are_split_and_named_after_their_program():
    config = MCPServerConfig.from_command_line("python3 -u servers/weather.py --units metric")
    assert (config.name, config.command) == ("weather", "python3")
    assert config.args == ("-u", "servers/weather.py", "--units", "metric")
    assert MCPServerConfig.from_command_line("my-server --x").name == "my-server"
    assert MCPServerConfig.from_command_line("http://localhost:9000/mcp").url is not None
    with pytest.raises(MCPConfigError, match="check the quotes"):
        MCPServerConfig.from_command_line("python 'unclosed")


def test_literal_tools_and_mcp_tools_share_one_call_grammar(server):
    @tool
    def pick(color: Literal["red", "blue"]) -> str:
        """Pick a color."""
        return color

    with ToolRegistry([pick], mcp_servers=[command(server)]) as registry:
        schema = registry.call_schema()
    names = [option["properties"]["name"]["const"] for option in schema["anyOf"]]
    assert names == ["pick", "add", "whoami", "refuse", "picture", "crash", "hang"]
