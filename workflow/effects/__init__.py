"""Effects: the outbox dispatcher, the handlers it runs, deadlines, renewals and the daemon."""
