"""clipdesk: private, offline photo-library search with CLIP."""

__version__ = "0.1.0"
