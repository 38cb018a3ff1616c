"""Generating one conversation: plan, role-play, validation (no files, no global state)."""
