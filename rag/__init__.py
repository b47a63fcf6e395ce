"""Question answering over news articles with citations a reader can check."""

__version__ = "0.1.0"
