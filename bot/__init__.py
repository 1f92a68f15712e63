"""backportbot: a chat-ops bot that carries fixes back to release branches."""

__version__ = "0.1.0"
