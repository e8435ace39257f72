"""The web console for HR and managers: signed in from chat with a one-time link, served by
``fidelio run`` beside the chat channels (server-rendered pages, no passwords)."""
