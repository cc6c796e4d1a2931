"""A stand-in WAIIDE for tests that need precise control: a real aiohttp server on a real socket.

    python fake_waiide.py --port N | --socket PATH

Routes (anything unknown is echoed):
  /healthz              code-server's health JSON
  /huge?size=N[&cl=1]   N deterministic bytes, streamed (chunked, or with Content-Length)
  /drip?n=K&delay=S     K chunks, S seconds apart
  /slow?delay=S         waits S seconds before answering
  /late-body?delay=S    head with Content-Length at once, the 5-byte body S seconds later
  /die?size=N&after=M   promises N bytes, sends M, then drops the connection
  /upload               consumes the body: {"bytes": n, "sha256": hex}
  /redirect             302 to /elsewhere?x=1 (relative Location, must pass unchanged)
  /cookies              two Set-Cookie fields
  /gzip                 a gzip body with Content-Encoding: gzip
  /status/CODE          answers CODE
  /ws                   WebSocket echo; text "close:CODE:REASON" makes the server close so;
                        text "info" answers JSON with subprotocol, Origin and Host;
                        text "stream:MIB" sends MIB one-MiB binary messages
  /ws-refuse            403 to an upgrade, like code-server's Origin check
  /ws/last-close        JSON: the close code and reason the last WebSocket client sent
  other                 JSON echo: method, raw path, headers, body length and sha256, peer port
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json

from aiohttp import WSMsgType, web

CHUNK = 256 * 1024
LAST_CLOSE: dict[str, object] = {}


# Bodies are this block repeated (the last piece cut short); tests compute the same digest with
# `expected_sha256`. 251 is prime, so the block is not a run of one repeated short pattern.
_BLOCK = bytes(i % 251 for i in range(CHUNK))


def chunk_at(offset: int, size: int) -> bytes:
    """`size` bytes of the body starting at `offset` (a multiple of CHUNK)."""
    return _BLOCK[:size]


def expected_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for offset in range(0, size, CHUNK):
        digest.update(chunk_at(offset, min(CHUNK, size - offset)))
    return digest.hexdigest()


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return web.json_response({
        "method": request.method,
        "raw_path": request.raw_path,
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.raw_headers],
        "body_bytes": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "peer_port": peer[1] if isinstance(peer, tuple) else None,
    })


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "alive", "lastHeartbeat": 1})


async def huge(request: web.Request) -> web.StreamResponse:
    size = int(request.query.get("size", "0"))
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    if request.query.get("cl"):
        resp.content_length = size
    else:
        resp.enable_chunked_encoding()
    await resp.prepare(request)
    sent = 0
    while sent < size:
        n = min(CHUNK, size - sent)
        await resp.write(chunk_at(sent, n))
        sent += n
    await resp.write_eof()
    return resp


async def drip(request: web.Request) -> web.StreamResponse:
    n = int(request.query.get("n", "3"))
    delay = float(request.query.get("delay", "0.5"))
    resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    for i in range(n):
        await resp.write(f"chunk {i}\n".encode())
        if i < n - 1:
            await asyncio.sleep(delay)
    await resp.write_eof()
    return resp


async def late_body(request: web.Request) -> web.StreamResponse:
    """Head (with Content-Length) first, the body after a pause."""
    resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
    resp.content_length = 5
    await resp.prepare(request)
    await asyncio.sleep(float(request.query.get("delay", "0.5")))
    await resp.write(b"later")
    await resp.write_eof()
    return resp


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("delay", "5")))
    return web.Response(text="finally")


async def die(request: web.Request) -> web.StreamResponse:
    size = int(request.query.get("size", "1000000"))
    after = int(request.query.get("after", "1000"))
    resp = web.StreamResponse()
    resp.content_length = size
    await resp.prepare(request)
    await resp.write(b"x" * after)
    await asyncio.sleep(0.1)
    assert request.transport is not None
    request.transport.abort()
    return resp


async def upload(request: web.Request) -> web.Response:
    digest = hashlib.sha256()
    total = 0
    async for chunk in request.content.iter_any():
        digest.update(chunk)
        total += len(chunk)
    return web.json_response({"bytes": total, "sha256": digest.hexdigest()})


async def redirect(_request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": "/elsewhere?x=1"})


async def cookies(_request: web.Request) -> web.Response:
    resp = web.Response(text="ok")
    resp.headers.add("Set-Cookie", "a=1; Path=/")
    resp.headers.add("Set-Cookie", "b=2; Path=/; HttpOnly")
    return resp


GZIP_BODY = gzip.compress(b"hello compressed world\n" * 50, mtime=0)


async def gzipped(_request: web.Request) -> web.Response:
    return web.Response(body=GZIP_BODY, headers={"Content-Encoding": "gzip",
                                                 "Content-Type": "text/plain"})


async def status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    return web.Response(status=code, text="" if code in (204, 304) else f"status {code}")


async def ws_handler(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=("chosen", "other"), max_msg_size=0, compress=False,
                               autoping=True)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            text = msg.data
            if text.startswith("close:"):
                _, code, reason = text.split(":", 2)
                await ws.close(code=int(code), message=reason.encode())
                break
            if text == "info":
                await ws.send_str(json.dumps({"subprotocol": ws.ws_protocol,
                                              "origin": request.headers.get("Origin"),
                                              "host": request.headers.get("Host")}))
                continue
            if text.startswith("stream:"):
                for _ in range(int(text.split(":")[1])):
                    await ws.send_bytes(chunk_at(0, CHUNK) * 4)
                await ws.send_str("stream-end")
                continue
            await ws.send_str(text)
        elif msg.type == WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    LAST_CLOSE.clear()
    LAST_CLOSE.update({"code": ws.close_code, "reason": getattr(ws, "close_reason", None)})
    return ws


async def ws_refuse(_request: web.Request) -> web.Response:
    return web.Response(status=403, text="Forbidden: origin mismatch")


async def last_close(_request: web.Request) -> web.Response:
    return web.json_response(LAST_CLOSE)


def make_app() -> web.Application:
    app = web.Application(client_max_size=0)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/huge", huge)
    app.router.add_get("/drip", drip)
    app.router.add_get("/slow", slow)
    app.router.add_get("/late-body", late_body)
    app.router.add_get("/die", die)
    app.router.add_post("/upload", upload)
    app.router.add_put("/upload", upload)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/cookies", cookies)
    app.router.add_get("/gzip", gzipped)
    app.router.add_route("*", "/status/{code}", status)
    app.router.add_get("/ws", ws_handler)
    app.router.add_get("/ws-refuse", ws_refuse)
    app.router.add_get("/ws/last-close", last_close)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int)
    parser.add_argument("--socket")
    args = parser.parse_args()
    if args.socket:
        web.run_app(make_app(), path=args.socket, print=None, access_log=None)
    else:
        web.run_app(make_app(), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
