"""Briefings: staff know first. Content, audience, scheduling, delivery, quiz, readiness, search."""
