"""Alarm messages: composing them, the channels that carry them, and the dispatcher (routing, escalation,
quiet hours, retries)."""
