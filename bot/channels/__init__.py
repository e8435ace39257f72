"""Chat channels: one small port (port.py) and one adapter per platform."""
