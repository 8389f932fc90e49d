"""Built-in tools, and every refusal they make."""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from tools import BUILTIN_TOOL_NAMES, ToolCall, ToolDefinitionError, ToolRegistry, builtin_tools
from tools.builtin import builtin_tool
from tools.builtin.calculator import evaluate
from tools.builtin.files import make_list_dir, make_read_file
from tools.builtin.html_text import html_to_text
from tools.builtin.http import make_http_get
from tools.builtin.netguard import NetworkPolicy, address_class
from tools.errors import ToolExecutionError


def call(t, **arguments):
    """Run one tool through a registry (validation, conversion, error wrapping)."""
    return asyncio.run(ToolRegistry([t]).execute(ToolCall("1", t.name, arguments)))


# ------------------------------------------------------------------ calculator
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("2 + 3 * 4", "14"),
        ("(2 + 3) * 4", "20"),
        ("2 ** 10", "1024"),
        ("7 / 2", "3.5"),
        ("7 // 2", "3"),
        ("-7 % 3", "2"),
        ("0.1 + 0.2", "0.3"),
        ("sqrt(16) + abs(-2)", "6"),
        ("round(pi, 3)", "3.142"),
        ("max(1, 5, 3) - min(4, 2)", "3"),
        ("factorial(20)", "2432902008176640000"),
        ("2 ** -2", "0.25"),
        ("log(e ** 2)", "2"),
        ("1_000 * 3", "3000"),
        ("10 ** 300", "1" + "0" * 300),
    ],
)
def test_calculator_values(expression, expected):
    result = call(builtin_tool("calculator"), expression=expression)
    assert result.error is None, result.error
    assert result.content == expected


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("__import__('os').system('echo hi')", "unknown function"),
        ("open('/etc/passwd')", "unknown function"),
        ("(1).__class__", "is not allowed"),
        ("x + 1", "unknown name 'x'"),
        ("'a' * 3", "is not a number"),
        ("True + 1", "is not a number"),
        ("1j * 2", "is not a number"),
        ("[1, 2]", "is not allowed"),
        ("lambda: 1", "is not allowed"),
        ("(x for x in range(3))", "is not allowed"),
        ("1 if 1 else 2", "is not allowed"),
        ("1 < 2", "is not allowed"),
        ("1 << 100000", "not supported"),
        ("2 ^ 10", "use **"),
        ("9 ** 9 ** 9", "exponents are limited"),
        ("2 ** 100000", "exponents are limited"),
        ("10 ** 5000", "too large"),
        ("(10 ** 1000) * (10 ** 1000) * (10 ** 1000) * (10 ** 1000) * (10 ** 1000)", "too large"),
        ("factorial(100000)", "limited to n <= 500"),
        ("2.0 ** 5000", "too large for a floating-point"),
        ("exp(1000)", "too large for a floating-point"),
        ("(-8) ** 0.5", "not a real number"),
        ("1 / 0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("sqrt(-1)", "math error"),
        ("1 +", "not an arithmetic expression"),
        ("", "empty"),
        ("round(1.5, 10 ** 10)", "round()"),
        ("sqrt(x=4)", "keyword arguments"),
    ],
)
def test_calculator_refusals(expression, reason):
    with pytest.raises(ToolExecutionError, match=re.escape(reason)):
        evaluate(expression)
    result = call(builtin_tool("calculator"), expression=expression)
    assert reason in result.error and result.content.startswith("Error: ")


def test_calculator_expression_length_is_in_its_schema():
    # The grammar then bounds the expression a model writes (a weak model once rambled
    # inside it to the run's token budget); the tool itself still refuses a longer one.
    tool = builtin_tool("calculator")
    assert tool.parameters["properties"]["expression"]["maxLength"] == 500
    with pytest.raises(ToolExecutionError, match="longer than 500 characters"):
        evaluate("1+" * 300 + "1")
    result = call(tool, expression="1+" * 300 + "1")
    # The reason survives the long value in the message.
    assert result.error.endswith("(601 long) is too long")


def test_calculator_nesting_limit():
    assert evaluate("-" * 98 + "1") == 1  # 99 levels: fine
    for expression in ("-" * 100 + "1", "(" * 110 + "1" + "+1)" * 110):
        with pytest.raises(ToolExecutionError, match="nests more than 100 levels"):
            evaluate(expression)
    result = call(builtin_tool("calculator"), expression="-" * 300 + "1")
    assert "nests more than 100 levels" in result.error


# ------------------------------------------------------------------ files
@pytest.fixture
def sandbox(tmp_path):
    root = tmp_path / "root"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "a.md").write_text("# Title\nhello\n")
    (root / "big.txt").write_text("0123456789" * 100)
    (root / "bin.dat").write_bytes(b"\x00\x01\x02binary")
    (root / "é.txt").write_text("unicode name")
    outside = tmp_path / "secret.txt"
    outside.write_text("top secret")
    (root / "escape.txt").symlink_to(outside)
    (root / "escape_dir").symlink_to(tmp_path)
    (root / "inside_link.md").symlink_to(root / "docs" / "a.md")
    os.mkfifo(root / "pipe")
    return root


def test_read_file_and_list_dir(sandbox):
    read_file, list_dir = make_read_file(sandbox), make_list_dir(sandbox)
    assert call(read_file, path="docs/a.md").content == "# Title\nhello\n"
    assert call(read_file, path="./docs/a.md").content == "# Title\nhello\n"
    assert call(read_file, path="é.txt").content == "unicode name"
    # A link that stays inside the root is followed.
    assert call(read_file, path="inside_link.md").content == "# Title\nhello\n"
    listing = call(list_dir).content.splitlines()
    assert listing == [
        "big.txt (1000 bytes)",
        "bin.dat (9 bytes)",
        "docs/",
        "escape.txt@ (symlink)",
        "escape_dir@ (symlink)",
        "inside_link.md@ (symlink)",
        "pipe (0 bytes)",
        "é.txt (12 bytes)",
    ]
    assert call(list_dir, path="docs").content == "a.md (14 bytes)"


@pytest.mark.parametrize(
    ("tool_name", "path", "reason"),
    [
        ("read_file", "/etc/passwd", "is an absolute path"),
        ("read_file", "../secret.txt", "contains '..'"),
        ("read_file", "docs/../../secret.txt", "contains '..'"),
        ("read_file", "docs/..", "contains '..'"),
        ("read_file", "escape.txt", "resolves outside the tool's root"),
        ("read_file", "escape_dir/secret.txt", "resolves outside the tool's root"),
        ("read_file", "docs/a.md\x00.txt", "NUL character"),
        ("read_file", "pipe", "is a FIFO (named pipe), not a regular file"),
        ("read_file", "bin.dat", "is a binary file"),
        ("read_file", "docs", "is a directory; use list_dir"),
        ("read_file", "missing.txt", "does not exist"),
        ("list_dir", "/", "is an absolute path"),
        ("list_dir", "..", "contains '..'"),
        ("list_dir", "escape_dir", "resolves outside the tool's root"),
        ("list_dir", "docs/a.md", "is a file, not a directory"),
        ("list_dir", "nowhere", "does not exist"),
    ],
)
def test_file_refusals(sandbox, tool_name, path, reason):
    factory = make_read_file if tool_name == "read_file" else make_list_dir
    done: list = []
    worker = threading.Thread(
        target=lambda: done.append(call(factory(sandbox), path=path)), daemon=True
    )
    worker.start()
    worker.join(60)  # opening a FIFO for reading would wait for a writer forever
    assert done, "the call blocked"
    result = done[0]
    assert result.error is not None and reason in result.error, result.error
    assert "top secret" not in result.content


def test_read_file_byte_cap_and_list_dir_entry_cap(sandbox):
    text = call(make_read_file(sandbox, max_bytes=25), path="big.txt").content
    assert text == "0123456789" * 2 + "01234" + "\n[truncated: only the first 25 bytes were read]"
    listing = call(make_list_dir(sandbox, max_entries=3)).content.splitlines()
    assert listing[:3] == ["big.txt (1000 bytes)", "bin.dat (9 bytes)", "docs/"]
    assert listing[3] == "[5 more entries not shown]"


def test_file_tools_need_an_existing_root(tmp_path):
    with pytest.raises(ToolDefinitionError, match=r"root directory .* does not exist"):
        make_read_file(tmp_path / "nope")


# ------------------------------------------------------------------ now
def test_now():
    utc = call(builtin_tool("now"), timezone="UTC").content
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00 \(\w+day, UTC\)", utc), utc
    tokyo = call(builtin_tool("now"), timezone="Asia/Tokyo").content
    assert "+09:00" in tokyo
    local = call(builtin_tool("now")).content
    assert re.match(r"\d{4}-\d\d-\d\dT", local)
    for bad in ("Mars/Olympus", "../../etc/passwd", "Europe"):
        result = call(builtin_tool("now"), timezone=bad)
        assert "unknown time zone" in result.error


# ------------------------------------------------------------------ http_get
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hosts: ClassVar[list[str]] = []  # Host headers seen

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send(self, status, body: bytes, ctype="text/html; charset=utf-8", headers=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.hosts.append(self.headers.get("Host", ""))
        port = self.server.server_address[1]
        path = self.path
        if path == "/page":
            html = (
                "<html><head><title>Test page</title><style>p{color:red}</style>"
                "<script>var secret = 1;</script></head><body><h1>Hello</h1>"
                "<p>First &amp; <b>bold</b> paragraph.</p><ul><li>one</li><li>two</li></ul>"
                "</body></html>"
            )
            self._send(200, html.encode())
        elif path == "/text":
            self._send(200, "plain text é".encode("latin-1"), "text/plain; charset=latin-1")
        elif path == "/big":
            self._send(200, b"a" * 2_000_000, "text/plain")
        elif path == "/slow":
            time.sleep(3)
            self._send(200, b"too late", "text/plain")
        elif path == "/image":
            self._send(200, b"\x89PNG\r\n", "image/png")
        elif path == "/missing":
            self._send(404, b"<p>not here</p>")
        elif path.startswith("/redirect/"):
            targets = {
                "ok": "/page",
                "loopback": f"http://127.0.0.2:{port}/page",
                "ipv6-loopback": f"http://[::1]:{port}/page",
                "metadata": "http://169.254.169.254/latest/meta-data/",
                "private": "http://192.168.1.1/admin",
                "ftp": "ftp://example.com/file",
                "file": "file:///etc/passwd",
                "loop": "/redirect/loop",
            }
            self._send(302, b"", headers={"Location": targets[path.split("/")[2]]})
        else:
            self._send(404, b"unknown")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that stops reading (byte cap, timeout) is expected here


@pytest.fixture(scope="module")
def server():
    httpd = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_http_get_fetches_html_as_text(server):
    result = call(make_http_get(allow_loopback=True), url=f"{server}/page")
    assert result.error is None, result.error
    assert result.content == (
        f"URL: {server}/page\nStatus: 200 OK\nContent-Type: text/html\n\n"
        "Test page\n\nHello\nFirst & bold paragraph.\n- one\n- two"
    )
    assert "secret" not in result.content and "color" not in result.content


def test_http_get_text_charset_status_and_relative_redirect(server):
    get = make_http_get(allow_loopback=True)
    text = call(get, url=f"{server}/text").content
    assert text.endswith("\n\nplain text é") and "Content-Type: text/plain" in text
    missing = call(get, url=f"{server}/missing")
    assert missing.error is None and "Status: 404 Not Found" in missing.content
    redirected = call(get, url=f"{server}/redirect/ok").content
    assert redirected.startswith(f"URL: {server}/page\nStatus: 200")


def test_http_get_ignores_proxy_environment(server, monkeypatch):
    # A proxy would receive the request and bypass the address checks: never used.
    monkeypatch.setenv("HTTP_PROXY", "http://10.255.255.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://10.255.255.1:9")
    result = call(make_http_get(allow_loopback=True, timeout=3), url=f"{server}/text")
    assert result.error is None, result.error


def test_http_get_resolves_names_and_pins_the_checked_address(server):
    port = server.rsplit(":", 1)[1]
    lookups = []

    async def resolver(host, p):
        lookups.append((host, p))
        return ["127.0.0.1"]

    get = make_http_get(allow_loopback=True, resolver=resolver)
    _Handler.hosts.clear()
    result = call(get, url=f"http://intranet.example:{port}/page")
    assert result.error is None, result.error
    assert lookups == [("intranet.example", int(port))]
    assert _Handler.hosts == [f"intranet.example:{port}"]  # Host header kept, IP pinned


def test_every_resolved_address_is_checked():
    async def mixed(host, port):
        return ["93.184.216.34", "10.1.2.3"]

    result = call(make_http_get(resolver=mixed), url="http://mixed.example/")
    assert result.error.startswith("refused: 'mixed.example' (at 10.1.2.3) is not a public address")

    async def rebinding(host, port):
        return ["::ffff:127.0.0.1"]

    result = call(make_http_get(resolver=rebinding), url="http://sneaky.example/")
    assert "(loopback)" in result.error


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9/", "127.0.0.1 is not a public address (loopback)"),
        ("http://localhost:9/", "'localhost' (at "),
        ("http://[::1]:9/", "::1 is not a public address (loopback)"),
        ("http://[::ffff:127.0.0.1]:9/", "(loopback)"),
        ("http://2130706433:9/", "(loopback)"),  # 127.0.0.1 written as one number
        ("http://10.0.0.1/", "10.0.0.1 is not a public address (private)"),
        ("http://172.16.5.4/", "(private)"),
        ("http://192.168.1.1/", "192.168.1.1 is not a public address (private)"),
        ("http://169.254.169.254/latest/meta-data/", "(link-local)"),
        ("http://[fe80::1]/", "(link-local)"),
        ("http://[fd00::1]/", "(private)"),
        ("http://0.0.0.0:9/", "not a public address"),
        ("http://100.64.0.1/", "not a public address"),
        ("file:///etc/passwd", "URL scheme 'file' is not allowed"),
        ("ftp://example.com/file", "URL scheme 'ftp' is not allowed"),
        ("gopher://example.com/", "URL scheme 'gopher' is not allowed"),
        ("example.com/page", "URL scheme '(none)' is not allowed"),
        ("http:///nohost", "no host"),
    ],
)
def test_http_get_refusals(url, reason):
    result = call(make_http_get(timeout=3), url=url)
    assert result.error is not None and reason in result.error, result.error


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        ("loopback", "127.0.0.2 is not a public address (loopback)"),
        ("ipv6-loopback", "::1 is not a public address (loopback)"),
        ("metadata", "169.254.169.254 is not a public address (link-local)"),
        ("private", "192.168.1.1 is not a public address (private)"),
        ("ftp", "URL scheme 'ftp' is not allowed"),
        ("file", "URL scheme 'file' is not allowed"),
        ("loop", "too many redirects"),
    ],
)
def test_http_get_checks_every_redirect(server, route, reason):
    # Only the test server's own address is allowed; where it redirects to is checked.
    get = make_http_get(allowed_networks=["127.0.0.1/32"], max_redirects=3)
    result = call(get, url=f"{server}/redirect/{route}")
    assert result.error is not None and reason in result.error, result.error


def test_http_get_allow_loopback_does_not_open_private_ranges(server):
    result = call(make_http_get(allow_loopback=True), url=f"{server}/redirect/metadata")
    assert "(link-local)" in result.error


def test_http_get_byte_cap(server):
    result = call(make_http_get(allow_loopback=True, max_bytes=1000), url=f"{server}/big")
    body = result.content.split("\n\n", 1)[1]
    assert body == "a" * 1000 + "\n[truncated: only the first 1000 bytes were read]"


def test_http_get_timeout(server):
    result = call(make_http_get(allow_loopback=True, timeout=0.5), url=f"{server}/slow")
    # The server answers after 3 s: this error exists only if the 0.5 s timeout fired.
    assert result.error == f"fetching {server}/slow timed out after 0.5s"


def test_http_get_refuses_binary_content(server):
    result = call(make_http_get(allow_loopback=True), url=f"{server}/image")
    assert "returned 'image/png' content, which is not text" in result.error


def test_http_get_connection_failure_is_an_error_result():
    # A closed port on loopback (allowed): the failure is reported, not raised.
    result = call(make_http_get(allow_loopback=True, timeout=2), url="http://127.0.0.1:9/")
    assert result.error.startswith("fetching http://127.0.0.1:9/ failed: ConnectError")


def test_address_classes_and_policy():
    import ipaddress

    assert address_class(ipaddress.ip_address("8.8.8.8")) is None
    assert address_class(ipaddress.ip_address("2606:4700::1111")) is None
    assert address_class(ipaddress.ip_address("64:ff9b::7f00:1")) == "loopback"  # NAT64
    assert address_class(ipaddress.ip_address("2002:7f00:1::")) == "loopback"  # 6to4
    policy = NetworkPolicy.create(allowed_networks=["10.0.0.0/8"])
    assert policy.refusal("10.1.1.1") is None and policy.refusal("192.168.0.1") == "private"
    assert NetworkPolicy.create(allow_private_network=True).refusal("169.254.169.254") is None


def test_html_to_text_edge_cases():
    assert html_to_text("<title>T</title><body><p>x</p>") == "T\n\nx"  # no </head>
    assert html_to_text("<pre>a  b\n c</pre>") == "a  b\nc"
    assert html_to_text("<p>one</p>\n\n<p>two</p><table><tr><td>a</td><td>b</td></tr></table>") == (
        "one\ntwo\na b"
    )
    assert html_to_text("<div>a<script>if (a < b) {}</script>b</div>") == "ab"
    assert html_to_text("<p>caf&eacute; &#8212; ok</p>") == "café — ok"


# ------------------------------------------------------------------ registry of builtins
def test_builtin_tools_by_name(tmp_path):
    all_tools = builtin_tools(root=tmp_path)
    assert [t.name for t in all_tools] == list(BUILTIN_TOOL_NAMES)
    assert all(t.has_implementation and t.description for t in all_tools)
    picked = builtin_tools(["now", "calculator"])
    assert [t.name for t in picked] == ["now", "calculator"]
    with pytest.raises(Exception, match=r"unknown built-in tool.*available: calculator"):
        builtin_tools(["rm_rf"])
    registry = ToolRegistry(all_tools)
    assert registry.call_schema()["anyOf"][0]["properties"]["name"] == {"const": "calculator"}
