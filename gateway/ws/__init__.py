"""WebSockets to WAIIDE: the upgrade (WAIIDE's handshake first), the byte tunnel, its registry."""
