"""Conversation types, prompt rendering and tool-call parsing."""
