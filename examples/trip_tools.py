"""Tools for `edge-agent run --tools-module examples/trip_tools.py` (and `chat`).

Every `@tool` in this file is registered: the type hints and docstrings become the JSON
Schemas the model's calls are constrained to.
"""

from __future__ import annotations

from typing import Literal

from tools import tool

_FORECASTS = {"lisbon": "sunny, 24 °C", "oslo": "rain, 9 °C"}


@tool
def forecast(city: str) -> str:
    """Tomorrow's weather in a city.

    Args:
        city: The city, e.g. "Lisbon".
    """
    return _FORECASTS.get(city.strip().lower(), "no forecast for that city")


@tool
def train_fare(origin: str, destination: str, travel_class: Literal["first", "second"]) -> dict:
    """The fare of a train ticket between two cities.

    Args:
        origin: Where the trip starts.
        destination: Where it ends.
        travel_class: First or second class.
    """
    base = 40 + 3 * abs(len(origin) - len(destination))
    return {"eur": base * (2 if travel_class == "first" else 1), "class": travel_class}
