"""Accounts, tokens, share links and the audit log: the gateway's own small database."""
