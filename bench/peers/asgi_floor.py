"""The ASGI floor: a bare ASGI app answering every request with the body of a Stigmer key GET.

No routing, no middleware, no store: what the HTTP server itself costs per request. Run on uvicorn
(uvloop + httptools) and on granian, it is the floor under any ASGI app on that server; the target is
Stigmer's key GET at 0.7x the faster of the two.

  uvicorn asgi_floor:app --loop uvloop --http httptools --no-access-log
  granian --interface asgi --loop uvloop --no-ws asgi_floor:app
"""

from __future__ import annotations

BODY = (b'{"namespace":"bench","key":"hot1","value":{"n":1,"agent":"bench","ok":true},"version":1,'
        b'"create_revision":1,"mod_revision":1,"created_at":"2026-12-01T15:09:25.966Z",'
        b'"updated_at":"2026-12-01T15:09:25.966Z","expires_at":null}')
START = {"type": "http.response.start", "status": 200,
         "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode()),
                     (b"etag", b'"1.1"'), (b"x-stigmer-revision", b"1")]}
RESPONSE = {"type": "http.response.body", "body": BODY}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send(START)
    await send(RESPONSE)
