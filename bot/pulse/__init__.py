"""Pulse surveys: content, schedules and rounds, answers, response rates."""
