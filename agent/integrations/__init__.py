"""Bridges to other libraries' APIs (each module imports its library: import only the
one you use). `agent.integrations.outlines`: edge-agent as an Outlines model."""
