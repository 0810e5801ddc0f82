"""Keys, CSRs and certificate checks."""
