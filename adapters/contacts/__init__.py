"""Approver contacts: WHOIS, RDAP, privacy/proxy detection and constructed addresses."""
