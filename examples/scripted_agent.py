"""A scripted agent: your own tools, an approval hook, a typed answer, a saved session.

    python examples/scripted_agent.py                      # built-in tiny model, offline
    python examples/scripted_agent.py --model smollm2      # a small real model
    python examples/scripted_agent.py --session trip       # resume it later by id

The tiny model has random weights: its calls are always well-formed (the grammar sees to
that) but what it asks for is noise. With the default LFM2 model the same script plans a
trip for real. Every event of the run is printed as it streams.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Literal

from pydantic import BaseModel

from agent import Agent, SamplingParams, UserError, load_model
from agent.events import (
    FinalEvent,
    ReasoningDelta,
    StatsEvent,
    TextDelta,
    ToolCallEvent,
    ToolResultEvent,
)
from tools import Tool, ToolCall, tool

City = Literal["Lisbon", "Oslo", "Kyoto"]
FORECASTS = {"Lisbon": "sunny, 24 C", "Oslo": "rain, 9 C", "Kyoto": "cloudy, 18 C"}
BOOKINGS: list[str] = []


@tool
def forecast(city: City) -> str:
    """Tomorrow's weather forecast for a city.

    Args:
        city: the city to look up.
    """
    return FORECASTS[city]


@tool(requires_approval=True, timeout=5)
def book_hotel(city: City, nights: Literal[1, 2, 3]) -> str:
    """Book a hotel (asks the user first).

    Args:
        city: where to stay.
        nights: how many nights.
    """
    BOOKINGS.append(f"{nights} night(s) in {city}")
    return f"booked {nights} night(s) in {city}"


class TripPlan(BaseModel):
    """The typed answer the run must end with."""

    city: City
    pack_umbrella: bool


def approve(call: ToolCall, tool_: Tool) -> bool:
    """Only short stays are approved without asking a human."""
    return call.arguments.get("nights", 99) <= 2


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--session", default=None, help="save (and resume) the run under an id")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        agent = Agent(
            load_model(args.model),
            [forecast, book_hotel],
            system="You plan short trips. Check the forecast before you decide.",
            tool_choice="forecast",  # the first step must check a forecast
            response_format=TripPlan,  # the final answer is a TripPlan
            approve=approve,
            max_steps=4,
            max_tokens=800,
            session=args.session,
            sampling=SamplingParams(temperature=0.7, seed=args.seed),
        )
        final: FinalEvent | None = None
        async for event in agent.stream("Where should I go this weekend, Lisbon or Oslo?"):
            if isinstance(event, TextDelta):
                print(event.text, end="", flush=True)
            elif isinstance(event, ReasoningDelta):
                print(f"\x1b[2m{event.text}\x1b[0m", end="", flush=True)
            elif isinstance(event, ToolCallEvent):
                print(f"\n-> {event.name}({json.dumps(event.arguments)})")
            elif isinstance(event, ToolResultEvent):
                print(f"<- {event.name}: {event.error or event.content}")
            elif isinstance(event, StatsEvent):
                s = event.stats
                print(
                    f"\n[step {event.step}: prefilled {s.prefilled_tokens} of "
                    f"{s.prompt_tokens} prompt tokens, generated {s.generated_tokens}]"
                )
            elif isinstance(event, FinalEvent):
                final = event
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    assert final is not None
    if final.stopped_by:
        print(f"\nstopped by {final.stopped_by}: {final.reason}")
    else:
        print(f"\nplan: {final.output!r}")
    print(f"bookings made: {BOOKINGS or 'none'}")
    if final.session_id:
        print(f"session: {final.session_id} (edge-agent sessions show {final.session_id})")
    return 0 if final.stopped_by is None else 3


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
