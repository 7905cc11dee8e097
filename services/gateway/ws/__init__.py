"""The viewer's WebSocket: protocol messages, per-viewport rendering, latest-wins frame sending."""
