"""The Home tab: what is waiting for each person, published where the platform has a place
for it (Slack's App Home)."""
