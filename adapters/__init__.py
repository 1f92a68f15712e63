"""Adapters at the edge: chat, forge and LLM implementations of the ports in bot/ports.py."""
