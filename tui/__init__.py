"""The Textual chat app of edge-agent (`edge-agent chat`, `edge-agent demo`).

The app is driven only by the agent's event stream (agent/events.py): widgets take
event objects, so the same UI can be replayed from fixed events in tests.
"""
