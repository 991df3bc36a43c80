"""Deterministic stand-ins for CLIP, used by the tests and for diagnostics."""
