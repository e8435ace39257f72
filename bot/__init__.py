"""Fidelio: internal-communication assistant and internal loyalty measurement."""

__version__ = "0.1.0"
