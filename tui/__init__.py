"""The Textual chat app of edge-agent (`edge-agent chat`, `edge-agent demo`).

The app is driven only by the agent's event stream (agent/events.py): widgets take
event objects, so the same UI can be replayed from fixed events in tests.
"""

from __future__ import annotations

import logging

# Quiet unless the application configures logging (the CLI: --verbose, EDGE_AGENT_LOG).
logging.getLogger(__name__).addHandler(logging.NullHandler())
