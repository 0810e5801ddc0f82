"""Small pieces several adapters share: atomic files, host:port, Retry-After, SQLite transactions."""
