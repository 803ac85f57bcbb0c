"""Engines turn a conversation into the model's next reply."""
