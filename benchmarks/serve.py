"""`edge-agent serve`: throughput through the server versus in process, the follow-up
turn's time to first token with the prompt cache, and request overhead under concurrency.

    python benchmarks/serve.py [--models tiny-large-vocab tiny] [--tokens 256] [--runs 5]
                               [--clients 1 4 16] [--requests 6]

Each model is served by a real `edge-agent serve` process on this machine and loaded in
this process too; the two never run at the same time, and runs alternate between them so
that other load on the machine falls on both alike.

1. Decode throughput: the same prompts, seeds and sampling in process (the engine the
   agent uses, `LocalChatModel.stream`) and through the server (SSE read with httpx),
   in ABBA order; tokens/s from the first streamed token to the end of the stream, as a
   client sees them, over all the runs together.
2. Time to first token of a follow-up turn in a ~2,000-token conversation: cold (a
   conversation the server has no cache for), warm (right after the previous turn) and
   warm after another conversation ran in between (the cache kept in the pool).
3. Request overhead at 1, 4 and 16 concurrent clients, each sending `--requests` short
   requests one after the other: latency, time queued, and what is neither queueing nor
   model time (HTTP, JSON, SSE, scheduling); every request must succeed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
# benchmarks/agent.py would shadow the `agent` package: keep this folder last on the path.
sys.path[:] = [
    str(_HERE.parent),
    *(p for p in sys.path if Path(p or ".").resolve() != _HERE),
    str(_HERE),
]

import httpx
from _machine import machine_description

from agent import load_model
from agent.engines.base import StepRequest, TextPiece
from agent.engines.local import LocalChatModel

PROMPT = "Write a long story about a journey across the mountains."
PARAGRAPH = (
    "The expedition reached the northern ridge just before dusk. The guide pointed at the "
    "glacier below and explained how the ice had retreated over the last forty years, "
    "leaving behind moraines, meltwater lakes and a valley full of loose rock. "
)


# ---------------------------------------------------------------------- server process
@dataclass
class Served:
    proc: subprocess.Popen
    url: str
    lines: list[str]

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=120)


def start_server(model: str, *extra: str) -> Served:
    """`edge-agent serve --model MODEL --port 0` and the URL it prints when ready."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli.main", "serve", "--model", model, "--port", "0", *extra],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []
    found: list[str] = []
    ready = threading.Event()

    def drain() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            match = re.search(r" at (http://\S+/v1)", line)
            if match:
                found.append(match.group(1))
                ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    ready.wait(timeout=600)
    if not found:
        raise SystemExit("the server did not start:\n" + "".join(lines))
    return Served(proc, found[0], lines)


@dataclass
class Streamed:
    """One streamed completion as the client saw it."""

    t_first: float  # seconds from the request to the first token
    t_end: float  # ... to the end of the stream
    tokens: int
    usage: dict[str, Any]
    cpu_s: float = 0.0  # CPU time the generating process spent on it (all its threads)

    @property
    def decode_tps(self) -> float:
        span = self.t_end - self.t_first
        return (self.tokens - 1) / span if self.tokens > 1 and span > 0 else 0.0


def process_cpu_s(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (this one by default), all threads."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def stream_chat(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], pid: int | None = None
) -> Streamed:
    """One streamed completion; with the server's `pid`, its CPU time too (Linux)."""
    body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    cpu0 = process_cpu_s(pid) if pid else 0.0
    t0 = time.perf_counter()
    t_first = 0.0
    usage: dict[str, Any] = {}
    async with client.stream("POST", f"{url}/chat/completions", json=body) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {(await response.aread())[:300]!r}")
        async for line in response.aiter_lines():
            if not line.startswith("data:") or line.endswith("[DONE]"):
                continue
            chunk = json.loads(line[5:])
            if chunk.get("error"):
                raise RuntimeError(str(chunk["error"]))
            if chunk.get("usage"):
                usage = chunk["usage"]
            for choice in chunk.get("choices") or []:
                if choice["delta"].get("content") and not t_first:
                    t_first = time.perf_counter() - t0
    t_end = time.perf_counter() - t0
    cpu = process_cpu_s(pid) - cpu0 if pid else 0.0
    return Streamed(t_first or t_end, t_end, usage["completion_tokens"], usage, cpu)


# ---------------------------------------------------------------------- 1. throughput
async def in_process(engine: LocalChatModel, body: dict[str, Any]) -> Streamed:
    """The same request through the engine the agent loop uses, timed the same way."""
    request = StepRequest(
        system="",
        messages=body["messages"],
        sampling=engine.default_sampling.with_overrides(seed=body["seed"]),
    )
    cpu0 = process_cpu_s()
    t0 = time.perf_counter()
    prepared = await asyncio.to_thread(engine.prepare, request)
    t_first = 0.0
    result = None
    async for item in engine.stream(prepared, body["max_tokens"]):
        if isinstance(item, TextPiece):
            t_first = t_first or time.perf_counter() - t0
        else:
            result = item
    assert result is not None
    t_end = time.perf_counter() - t0
    return Streamed(t_first or t_end, t_end, result.stats.generated_tokens, {},
                    process_cpu_s() - cpu0)  # fmt: skip


def _rate(runs: list[Streamed]) -> float:
    """Tokens after the first over the time they took, summed over the runs (a run that
    ended early weighs less than a median would let it)."""
    return sum(s.tokens - 1 for s in runs) / sum(s.t_end - s.t_first for s in runs)


def throughput(spec: str, served: Served, tokens: int, runs: int) -> dict[str, Any]:
    engine = LocalChatModel.for_model(load_model(spec))

    async def measure() -> tuple[list[Streamed], list[Streamed]]:
        local, remote = [], []
        async with httpx.AsyncClient(timeout=600) as client:
            warm = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8, "seed": 0}
            await in_process(engine, warm)
            await stream_chat(client, served.url, warm)
            for run in range(runs):
                body = {
                    "messages": [{"role": "user", "content": f"{PROMPT} Part {run}."}],
                    "max_tokens": tokens,
                    "seed": run,
                }
                pid = served.proc.pid if sys.platform == "linux" else None
                if run % 2 == 0:  # ABBA: a drift in the machine's load falls on both alike
                    local.append(await in_process(engine, body))
                    remote.append(await stream_chat(client, served.url, body, pid))
                else:
                    remote.append(await stream_chat(client, served.url, body, pid))
                    local.append(await in_process(engine, body))
                # The same prompt, seed and sampling: the same tokens either way.
                assert local[-1].tokens == remote[-1].tokens, (local[-1], remote[-1])
        return local, remote

    load_before = os.getloadavg()[0]
    local, remote = asyncio.run(measure())
    engine.reset()
    server_side = statistics.median(s.usage["edge_agent"]["decode_tokens_per_s"] for s in remote)
    tokens_all = sum(s.tokens for s in remote)
    return {
        "load": (load_before, os.getloadavg()[0]),
        "cpu_local_ms": sum(s.cpu_s for s in local) * 1000 / tokens_all,
        "cpu_remote_ms": sum(s.cpu_s for s in remote) * 1000 / tokens_all,
        "model": spec,
        "tokens": sum(s.tokens for s in remote),
        "local_tps": _rate(local),
        "remote_tps": _rate(remote),
        "server_tps": server_side,
        "ratio": _rate(remote) / _rate(local),
        "ratios": [r.decode_tps / loc.decode_tps for loc, r in zip(local, remote, strict=True)],
    }


# ---------------------------------------------------------------------- 2. follow-up TTFT
def _conversation(tag: str, paragraphs: int) -> list[dict[str, Any]]:
    text = "".join(f"({tag} {i}) {PARAGRAPH}" for i in range(paragraphs))
    return [
        {"role": "system", "content": f"Conversation {tag}."},
        {"role": "user", "content": f"{text}\nSummarise the notes above."},
    ]


async def _turn(client: httpx.AsyncClient, url: str, messages: list[dict[str, Any]]) -> dict:
    body = {"messages": messages, "max_tokens": 16, "seed": 1}
    response = await client.post(f"{url}/chat/completions", json=body)
    response.raise_for_status()
    return response.json()


def followup_ttft(served: Served, paragraphs: int, runs: int) -> dict[str, Any]:
    async def measure() -> dict[str, list[float]]:
        out: dict[str, list[float]] = {"cold": [], "warm": [], "pool": []}
        cached: dict[str, list[int]] = {"cold": [], "warm": [], "pool": []}
        prompt_tokens: list[int] = []
        async with httpx.AsyncClient(timeout=600) as client:
            for run in range(runs):
                for case in ("warm", "pool", "cold"):
                    tag = f"{case}-{run}"
                    messages = _conversation(tag, paragraphs)
                    first = await _turn(client, served.url, messages)
                    follow = [
                        *messages,
                        first["choices"][0]["message"],
                        {"role": "user", "content": "And the second part?"},
                    ]
                    if case == "pool":  # another conversation runs in between
                        await _turn(client, served.url, _conversation(f"other-{run}", 2))
                    if case == "cold":  # a follow-up the server has never seen
                        follow[0] = {"role": "system", "content": f"Conversation {tag}!"}
                    reply = await stream_chat(
                        client, served.url, {"messages": follow, "max_tokens": 4, "seed": 1}
                    )
                    out[case].append(reply.t_first)
                    cached[case].append(reply.usage["prompt_tokens_details"]["cached_tokens"])
                    prompt_tokens.append(reply.usage["prompt_tokens"])
        out["cached"] = [statistics.median(cached[c]) for c in ("cold", "warm", "pool")]
        out["prompt"] = [statistics.median(prompt_tokens)]
        return out

    result = asyncio.run(measure())
    cold, warm, pool = (statistics.median(result[c]) for c in ("cold", "warm", "pool"))
    return {
        "prompt_tokens": result["prompt"][0],
        "cached": result["cached"],
        "cold_ms": cold * 1000,
        "warm_ms": warm * 1000,
        "pool_ms": pool * 1000,
    }


# ---------------------------------------------------------------------- 3. concurrency
def concurrency(served: Served, clients: int, requests: int) -> dict[str, Any]:
    async def client_loop(client: httpx.AsyncClient, index: int, rows: list, errors: list):
        for n in range(requests):
            body = {
                "messages": [{"role": "user", "content": f"Client {index}, request {n}."}],
                "max_tokens": 16,
                "seed": n,
            }
            t0 = time.perf_counter()
            response = await client.post(f"{served.url}/chat/completions", json=body)
            latency = time.perf_counter() - t0
            if response.status_code != 200:
                errors.append(response.status_code)
                continue
            extra = response.json()["usage"]["edge_agent"]
            rows.append((latency * 1000, extra["queue_wait_ms"], extra["total_ms"]))

    async def measure() -> tuple[list, list, float]:
        rows: list[tuple[float, float, float]] = []
        errors: list[int] = []
        limits = httpx.Limits(max_connections=clients + 4)
        async with httpx.AsyncClient(timeout=600, limits=limits) as client:
            t0 = time.perf_counter()
            await asyncio.gather(*(client_loop(client, i, rows, errors) for i in range(clients)))
            return rows, errors, time.perf_counter() - t0

    rows, errors, wall = asyncio.run(measure())
    latency = sorted(r[0] for r in rows)
    overhead = sorted(r[0] - r[1] - r[2] for r in rows)
    return {
        "clients": clients,
        "requests": len(rows) + len(errors),
        "errors": len(errors),
        "throughput": len(rows) / wall,
        "latency_p50": _pct(latency, 50),
        "latency_p95": _pct(latency, 95),
        "queue_p50": _pct(sorted(r[1] for r in rows), 50),
        "model_p50": _pct(sorted(r[2] for r in rows), 50),
        "overhead_p50": _pct(overhead, 50),
        "overhead_p95": _pct(overhead, 95),
    }


def _pct(values: list[float], p: int) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


# ---------------------------------------------------------------------- report
def report_throughput(t: dict[str, Any], tokens: int, runs: int) -> None:
    print(
        f"Decode throughput: {runs} runs of up to {tokens} tokens ({t['tokens']} in all, the same "
        "tokens both ways), alternating in ABBA order:\n"
    )
    print(
        "| in process tok/s | through the server tok/s (client) | server-side tok/s | "
        "server / in process |"
    )
    print("|---:|---:|---:|---:|")
    print(
        f"| {t['local_tps']:.1f} | {t['remote_tps']:.1f} | {t['server_tps']:.1f} | "
        f"{t['ratio']:.3f} |"
    )
    print(f"\nPer-run ratios: {', '.join(f'{r:.2f}' for r in t['ratios'])}")
    print(f"Load average (1 min) before and after: {t['load'][0]:.1f}, {t['load'][1]:.1f}\n")
    if t["cpu_remote_ms"]:
        print(
            f"CPU time per token (all threads of the generating process): in process "
            f"{t['cpu_local_ms']:.2f} ms, server process {t['cpu_remote_ms']:.2f} ms; "
            f"in process / server: {t['cpu_local_ms'] / t['cpu_remote_ms']:.3f}\n"
        )


def report_ttft(f: dict[str, Any], runs: int) -> None:
    print(
        f"Follow-up turn of a {f['prompt_tokens']:.0f}-token conversation, time to first "
        f"token seen by the client (median of {runs}):\n"
    )
    print("| case | cached prompt tokens | TTFT ms |")
    print("|---|---:|---:|")
    cases = (
        ("cold (no cache for it)", "cold_ms"),
        ("warm (right after its previous turn)", "warm_ms"),
        ("warm after another conversation (from the pool)", "pool_ms"),
    )
    for (name, key), cached in zip(cases, f["cached"], strict=True):
        print(f"| {name} | {cached:.0f} | {f[key]:.0f} |")
    print(
        f"\ncold / warm: {f['cold_ms'] / f['warm_ms']:.1f}x, "
        f"cold / pool: {f['cold_ms'] / f['pool_ms']:.1f}x\n"
    )


def report_concurrency(rows: list[dict[str, Any]], requests: int) -> None:
    print(f"Concurrent clients, {requests} requests each (16 tokens):\n")
    print(
        "| clients | requests | errors | req/s | latency p50 ms | latency p95 ms | "
        "queued p50 ms | model p50 ms | overhead p50 ms | overhead p95 ms |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['clients']} | {r['requests']} | {r['errors']} | {r['throughput']:.1f} "
            f"| {r['latency_p50']:.0f} | {r['latency_p95']:.0f} | {r['queue_p50']:.0f} "
            f"| {r['model_p50']:.0f} | {r['overhead_p50']:.1f} | {r['overhead_p95']:.1f} |"
        )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny-large-vocab", "tiny"])
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--paragraphs", type=int, default=40, help="~50 tokens each")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=6, help="per client")
    parser.add_argument(
        "--parts", nargs="+", default=["throughput", "ttft", "concurrency"],
        choices=["throughput", "ttft", "concurrency"],
    )  # fmt: skip
    args = parser.parse_args()
    print(f"Machine: {machine_description()}\n")

    for spec in args.models:
        served = start_server(spec)
        print(f"### {spec}\n", flush=True)
        try:
            if "throughput" in args.parts:
                report_throughput(throughput(spec, served, args.tokens, args.runs),
                                  args.tokens, args.runs)  # fmt: skip
            if "ttft" in args.parts:
                report_ttft(followup_ttft(served, args.paragraphs, args.runs), args.runs)
            if "concurrency" in args.parts:
                rows = [concurrency(served, n, args.requests) for n in args.clients]
                report_concurrency(rows, args.requests)
        finally:
            code = served.stop()
        print(f"Server exit code after Ctrl+C: {code}\n", flush=True)


if __name__ == "__main__":
    main()
