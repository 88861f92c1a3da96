"""The opt-in live suite: ``pytest -m live`` against a real (sandbox) m3ter organization."""
