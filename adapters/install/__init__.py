"""Installation: local directories, all-or-nothing over several targets, TLS probes, delivery."""
