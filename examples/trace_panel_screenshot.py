"""Draw docs/trace-panel.svg: the chat UI's trace panel (Ctrl+T) after one turn.

    python examples/trace_panel_screenshot.py [OUT.svg] [--model tiny]

The UI runs headless (Textual's pilot) with a forced tool call, so the tree shows a
model step, the tool call and the answer step; the SVG is what a terminal would show.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Literal

from agent.sessions import SessionStore
from tools import tool
from tui.agent_backend import AgentBackend, ChatOptions
from tui.app import EdgeAgentApp


@tool
def weather(city: Literal["Oslo", "Lima"]) -> str:
    """Current weather in a city."""
    return f"{city}: 21 C and sunny"


async def shoot(out: Path, model: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SessionStore(Path(tmp) / "sessions.sqlite3")
        options = ChatOptions(model=model, tools=[weather], tool_choice="required",
                              max_steps=2, max_tokens=96)  # fmt: skip
        app = EdgeAgentApp(AgentBackend(options, store), show_sidebar=False)
        async with app.run_test(size=(130, 32)) as pilot:
            while not app.ready:
                await pilot.pause(0.05)
            await pilot.press("ctrl+t")
            app.prompt_input.value = "Weather in Oslo?"
            await pilot.press("enter")
            await pilot.pause(0.2)
            while app.generating:
                await pilot.pause(0.05)
            await pilot.pause(0.5)
            app.save_screenshot(filename=out.name, path=str(out.parent))
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="docs/trace-panel.svg")
    parser.add_argument("--model", default="tiny")
    args = parser.parse_args()
    asyncio.run(shoot(Path(args.out), args.model))


if __name__ == "__main__":
    main()
