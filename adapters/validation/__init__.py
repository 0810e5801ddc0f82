"""Publishing domain-validation challenges: webroot files and DNS TXT records."""
