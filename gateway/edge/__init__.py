"""The strict front door: every request the gateway serves is parsed per RFC 9110/9112 here.

    rules       pure checks of a request head and chunked framing (no Sanic); HttpViolation
    protocol    Sanic's HTTP/1 protocol with those checks in its parser, the header timeout
                and the cap on connections still sending their head
"""
