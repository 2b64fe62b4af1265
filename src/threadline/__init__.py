"""threadline: conversations with language models, kept locally and scoped to a directory."""

__version__ = "0.1.0"
