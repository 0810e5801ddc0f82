"""Notifications: message rendering, and the folder, SMTP and webhook senders."""
