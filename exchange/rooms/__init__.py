"""Live chat rooms per work and per rights holder over WebSockets (Django Channels):
history, moderation, membership rules."""
