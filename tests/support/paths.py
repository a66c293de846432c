"""Where things are: the checkout's root, for tests and servers that read its files or run in it."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
