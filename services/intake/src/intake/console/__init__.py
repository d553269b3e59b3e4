"""The operator console: server-rendered pages under `/console`, signed in with an operator API key."""
