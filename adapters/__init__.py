"""The outside world behind small Protocols (see adapters.base). Imports nothing of workflow/."""
