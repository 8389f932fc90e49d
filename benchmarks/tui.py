"""UI cost of streaming: milliseconds per token through the chat widget.

    python benchmarks/tui.py [--tokens 5000] [--rates 500 100] [--repeats 3]

Streams a markdown answer (paragraphs, lists, code, headings) as `TextDelta` events
into the headless app, posted from another thread the way the agent thread posts
them, and waits until every token is on screen. No model runs: the figure is what
the UI adds per token, which must stay far below the model's own time per token
(target <= 1 ms).

- `burst`: all tokens posted at once; wall time until all is rendered / tokens.
- `paced`: tokens posted at a model-like rate; CPU time of the UI thread / tokens,
  the share of one core that is, and how far the screen lags behind at the end.
- `naive update`: `Markdown.update(whole text)` per token, the approach the widget
  avoids (fewer tokens, since its cost grows with the answer's length).
- handler: time the UI loop spends in one event's handler (`apply_event`), which
  bounds how long a key press can wait while tokens stream.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import threading
import time
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
sys.path.insert(0, _HERE)
from _machine import machine_description

# This script's name would shadow the `tui` package: import it from the project.
sys.path[:] = [p for p in sys.path if p not in ("", _HERE) and Path(p).resolve() != Path(_HERE)]

from agent.events import FinalEvent, RunStats, TextDelta
from tui.app import AgentEventPosted, EdgeAgentApp

SIZE = (100, 40)
SECTION = """## Part {n}

Prompt caching keeps the **key/value state** of a prompt prefix, so the next call of an
agent loop only prefills the tokens it adds. On a small model the prefill of a long
system prompt dominates the time to first token; with the cache it is paid once.

- the cache holds the tokens already fed to the model
- a new prompt that *extends* them reuses them
- anything else starts from an empty cache

```python
result = model.generate(messages, max_tokens=64)
print(result.stats.cached_prompt_tokens)
```

"""


def answer_tokens(n_tokens: int) -> list[str]:
    """About `n_tokens` pieces of a markdown answer, split like a BPE tokenizer would."""
    pieces: list[str] = []
    n = 0
    while len(pieces) < n_tokens:
        n += 1
        pieces += re.findall(r"\s*[\w]+|\s*[^\w\s]+|\s+", SECTION.format(n=n))
    return pieces[:n_tokens]


async def settle(app: EdgeAgentApp, pilot) -> None:
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


async def stream_from_thread(tokens: list[str], rate: float | None) -> tuple[float, float]:
    """(wall s, UI-thread CPU s) until `tokens`, posted at `rate` tok/s, are on screen."""
    app = EdgeAgentApp(live_stats=False)
    async with app.run_test(size=SIZE) as pilot:
        turn = await app.begin_turn("Explain prompt caching.")

        def produce() -> None:
            start = time.perf_counter()
            for i, text in enumerate(tokens):
                if rate is not None and (wait := start + i / rate - time.perf_counter()) > 0:
                    time.sleep(wait)
                app.post_message(AgentEventPosted(turn, TextDelta(text)))
            app.post_message(AgentEventPosted(turn, FinalEvent("".join(tokens), RunStats())))

        producer = threading.Thread(target=produce)
        # The app runs on this thread: its CPU time is the UI's, not the producer's.
        cpu0, t0 = time.thread_time(), time.perf_counter()
        producer.start()
        # The FinalEvent is handled after every delta, and it flushes the answer.
        while producer.is_alive() or app.chat.turn is not None:
            await asyncio.sleep(0.005)
        await settle(app, pilot)
        wall, cpu = time.perf_counter() - t0, time.thread_time() - cpu0
        producer.join()
        assert app.chat.turns[-1].answer_text == "".join(tokens)
        assert app.chat.turns[-1].segments[0].source == "".join(tokens)
    return wall, cpu


async def handler_times(tokens: list[str]) -> list[float]:
    app = EdgeAgentApp(live_stats=False)
    async with app.run_test(size=SIZE) as pilot:
        await app.begin_turn("Explain prompt caching.")
        times = []
        for text in tokens:
            t = time.perf_counter()
            await app.apply_event(TextDelta(text))
            times.append(time.perf_counter() - t)
            await asyncio.sleep(0)  # let the flush task and the screen run, as between events
        await app.apply_event(FinalEvent("".join(tokens), RunStats()))
        await settle(app, pilot)
    return times


async def run_naive(tokens: list[str]) -> float:
    from textual.widgets import Markdown

    app = EdgeAgentApp(live_stats=False)
    async with app.run_test(size=SIZE) as pilot:
        await app.chat.add_user("Explain prompt caching.")
        widget = Markdown()
        await app.chat.mount(widget)
        text = ""
        t0 = time.perf_counter()
        for piece in tokens:
            text += piece
            await widget.update(text)
        await settle(app, pilot)
        return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=5000)
    parser.add_argument(
        "--rates", type=float, nargs="*", default=[500.0, 100.0], help="paced tokens per second"
    )
    parser.add_argument("--naive-tokens", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3, help="runs of the burst mode")
    args = parser.parse_args()

    tokens = answer_tokens(args.tokens)
    n = len(tokens)
    burst = [asyncio.run(stream_from_thread(tokens, None))[0] for _ in range(args.repeats)]
    paced = [(rate, *asyncio.run(stream_from_thread(tokens, rate))) for rate in args.rates]
    naive_tokens = tokens[: args.naive_tokens]
    naive = asyncio.run(run_naive(naive_tokens))
    handler = sorted(t * 1000 for t in asyncio.run(handler_times(tokens)))

    print(f"Machine: {machine_description()}")
    print(f"Answer: {len(''.join(tokens))} characters of markdown\n")
    print("| mode | tokens | measure | total s | ms / token |")
    print("|---|---:|---|---:|---:|")
    burst_s = statistics.median(burst)
    print(
        f"| burst | {n} | wall, median of {args.repeats} | {burst_s:.2f} | "
        f"{burst_s * 1000 / n:.3f} |"
    )
    for rate, wall, cpu in paced:
        ideal = n / rate
        print(
            f"| paced {rate:.0f} tok/s | {n} | UI-thread CPU ({cpu / wall:.0%} of a core; "
            f"screen {wall - ideal:+.2f} s behind at the end) | {cpu:.2f} | "
            f"{cpu * 1000 / n:.3f} |"
        )
    print(
        f"| naive update | {len(naive_tokens)} | wall | {naive:.2f} | "
        f"{naive * 1000 / len(naive_tokens):.3f} |"
    )
    p99 = handler[int(len(handler) * 0.99)]
    print(
        f"\nHandler time per event: median {statistics.median(handler):.3f} ms, "
        f"p99 {p99:.3f} ms, max {handler[-1]:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
