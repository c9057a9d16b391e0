"""Live small-group deliberation: scheduled rooms with an automated moderator (issue 12)."""
