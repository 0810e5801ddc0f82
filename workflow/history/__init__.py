"""Order histories: replay (fold events through the lifecycle) and JSON Lines transfer."""
