"""HTTP to WAIIDE: request targets and heads, the pooled upstream client, the streaming relay."""
