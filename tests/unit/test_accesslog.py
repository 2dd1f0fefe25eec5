from stigmer.support.accesslog import redact_query


def test_redacts_credentials_and_keeps_the_rest():
    assert redact_query(b"") == ""
    assert redact_query(b"apiKey=a&API_KEY=b&access_token=c&key=d&prefix=agents/&limit=5") == \
        "?apiKey=***&API_KEY=***&access_token=***&key=***&prefix=agents/&limit=5"
    assert "\n" not in redact_query(b"prefix=a%0Afake")


def test_lines_of_one_loop_turn_are_written_in_one_call_and_paths_cannot_forge_lines():
    import asyncio

    from stigmer.support.accesslog import LineSink, ObserveRequests
    from stigmer.support.metrics import Metrics

    class Stream:
        def __init__(self):
            self.writes: list[str] = []

        def write(self, text: str) -> None:
            self.writes.append(text)

        def flush(self) -> None:
            pass

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def sent(message):
        pass

    async def main(stream: Stream) -> None:
        logged = ObserveRequests(app, Metrics().http, LineSink(stream))
        scopes = [{"type": "http", "method": "GET", "path": path, "query_string": b"key=s3cret",
                   "state": {"request_id": f"r{i}"}} for i, path in enumerate(["/v1/a", "/v1/b\nINFO: forged"])]
        await asyncio.gather(*(logged(s, None, sent) for s in scopes))
        await asyncio.sleep(0)

    stream = Stream()
    asyncio.run(main(stream))
    assert len(stream.writes) == 1
    lines = stream.writes[0].splitlines()
    assert lines[0].startswith("INFO:     GET /v1/a?key=*** 204 ") and lines[0].endswith(" rid=r0")
    assert lines[1].startswith("INFO:     GET /v1/b%0AINFO:%20forged?key=*** 204 ")
    assert len(lines) == 2
