"""`http_get`: fetch a web page as text, inside the network policy.

Guards, each with a test: http/https only; every hop (the URL and each redirect) is
resolved and all its addresses checked against the `NetworkPolicy`; the request goes to
a checked address (TLS still verifies the real host name); environment proxies are
ignored (they would bypass the checks); one timeout covers the whole fetch; the body
is read up to a byte cap and the rest is never downloaded.
"""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx

from tools.builtin.html_text import html_to_text
from tools.builtin.netguard import NetworkPolicy, Resolver, checked_addresses, system_resolver
from tools.errors import ToolExecutionError
from tools.tool import Tool, tool

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_BYTES = 1_000_000
DEFAULT_MAX_REDIRECTS = 5
USER_AGENT = "edge-agent/0.1 (+https://github.com/; tool http_get)"
_REDIRECTS = {301, 302, 303, 307, 308}
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml+xml",
               "application/javascript", "application/ld+json", "application/rss+xml",
               "application/atom+xml")  # fmt: skip


@dataclass(frozen=True)
class HttpGetConfig:
    policy: NetworkPolicy = field(default_factory=NetworkPolicy)
    timeout: float = DEFAULT_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES
    max_redirects: int = DEFAULT_MAX_REDIRECTS


@dataclass(frozen=True)
class Page:
    url: str
    status: int
    reason: str
    content_type: str
    body: bytes
    truncated: bool


def _check_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise ToolExecutionError(f"invalid URL '{url}': {exc}") from None
    if parsed.scheme not in ("http", "https"):
        shown = parsed.scheme or "(none)"
        raise ToolExecutionError(
            f"refused: URL scheme '{shown}' is not allowed; only http and https URLs are fetched"
        )
    if not parsed.host:
        raise ToolExecutionError(f"invalid URL '{url}': no host")
    return parsed


async def fetch(url: str, config: HttpGetConfig, resolver: Resolver = system_resolver) -> Page:
    """GET `url` following redirects by hand, checking every hop; no overall timeout."""
    current = url
    for _hop in range(config.max_redirects + 1):
        target = _check_url(current)
        port = target.port or (443 if target.scheme == "https" else 80)
        addresses = await checked_addresses(target.host, port, config.policy, resolver)
        pinned = target.copy_with(host=addresses[0])
        headers = {
            "Host": target.netloc.decode("ascii"),
            "User-Agent": USER_AGENT,
            "Accept": "text/html,text/plain,application/json;q=0.9,*/*;q=0.5",
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        timeout = httpx.Timeout(config.timeout)
        async with (
            httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client,
            client.stream("GET", pinned, headers=headers, extensions=extensions) as response,
        ):
            location = response.headers.get("location")
            if response.status_code in _REDIRECTS and location:
                current = str(target.join(location))
                continue
            body, truncated = await _read_capped(response, config.max_bytes)
            return Page(
                url=str(target),
                status=response.status_code,
                reason=response.reason_phrase,
                content_type=response.headers.get("content-type", ""),
                body=body,
                truncated=truncated,
            )
    raise ToolExecutionError(f"too many redirects (more than {config.max_redirects})")


async def _read_capped(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    """At most `max_bytes` of the (decoded) body; stops downloading at the cap."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        room = max_bytes - size
        if len(chunk) > room:
            chunks.append(chunk[:room])
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


def _charset(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset":
            name = value.strip().strip("\"'")
            try:
                return codecs.lookup(name).name
            except LookupError:
                break
    return "utf-8"


def page_text(page: Page, max_bytes: int) -> str:
    """What the model reads: a short header and the page as text."""
    mime = page.content_type.split(";")[0].strip().lower()
    if mime and not mime.startswith(_TEXT_TYPES):
        raise ToolExecutionError(
            f"{page.url} returned '{mime}' content, which is not text ({len(page.body)} bytes)"
        )
    text = page.body.decode(_charset(page.content_type), errors="replace")
    if mime in ("text/html", "application/xhtml+xml") or (
        not mime and text.lstrip()[:15].lower().startswith(("<!doctype html", "<html"))
    ):
        text = html_to_text(text)
    header = f"URL: {page.url}\nStatus: {page.status} {page.reason}".rstrip()
    if mime:
        header += f"\nContent-Type: {mime}"
    note = f"\n[truncated: only the first {max_bytes} bytes were read]" if page.truncated else ""
    return f"{header}\n\n{text}{note}"


def make_http_get(
    *,
    allow_loopback: bool = False,
    allow_private_network: bool = False,
    allowed_networks: Iterable[str] = (),
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    resolver: Resolver = system_resolver,
) -> Tool:
    """An `http_get` tool with its own policy and limits.

    `allow_loopback` permits 127.0.0.0/8 and ::1; `allow_private_network` permits every
    non-public address; `allowed_networks` permits listed CIDRs only. `resolver` maps
    (host, port) to addresses (the system resolver by default).
    """
    config = HttpGetConfig(
        policy=NetworkPolicy.create(
            allow_loopback=allow_loopback,
            allow_private_network=allow_private_network,
            allowed_networks=allowed_networks,
        ),
        timeout=timeout,
        max_bytes=max_bytes,
        max_redirects=max_redirects,
    )

    # The registry's timeout is a backstop; the fetch's own timeout fires first and
    # says which limit was hit.
    @tool(name="http_get", timeout=timeout + 5.0, untrusted_results=True)
    async def http_get(url: str) -> str:
        """Fetch a web page (http or https) and return its text.

        HTML is converted to plain text. Private, loopback and link-local addresses are
        refused.

        Args:
            url: The absolute URL to fetch, for example "https://example.com/page".
        """
        try:
            page = await asyncio.wait_for(fetch(url, config, resolver), timeout)
        except asyncio.TimeoutError:
            raise ToolExecutionError(f"fetching {url} timed out after {timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise ToolExecutionError(
                f"fetching {url} failed: {type(exc).__name__}: {exc or 'no detail'}"
            ) from None
        return page_text(page, max_bytes)

    return http_get


http_get = make_http_get()
