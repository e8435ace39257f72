"""Loyalty measurement: metrics, anonymity, objective indicators, reports and charts."""
