"""benchmarks.load_gen against a scripted local HTTP server: chunked SSE timing, errors, bounds."""

import asyncio
import json

import pytest

from benchmarks.load_gen import percentiles, run_rate, stream_completion

GAP_S = 0.05


async def _sse_server(status: int = 200, tokens: int = 4, first_delay: float = 0.1):
    """A server that answers like vLLM's streamed /v1/completions, one chunked SSE event per token."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = int(next(line.split(b":")[1] for line in lines if line.lower().startswith(b"content-length")))
        body = json.loads(await reader.readexactly(length))
        reason = "OK" if status == 200 else "Bad Request"
        writer.write(f"HTTP/1.1 {status} {reason}\r\nTransfer-Encoding: chunked\r\n\r\n".encode())

        def chunk(data: bytes) -> None:
            writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

        if status != 200:
            chunk(b'{"error": "prompt too long"}')
        else:
            await asyncio.sleep(first_delay)
            for i in range(min(tokens, body["max_tokens"])):
                if i:
                    await asyncio.sleep(GAP_S)
                chunk(f'data: {{"choices": [{{"text": " w{i}"}}]}}\n\n'.encode())
                await writer.drain()
            chunk(f'data: {{"choices": [], "usage": {{"completion_tokens": {tokens}}}}}\n\n'.encode())
            chunk(b"data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_ttft_and_itl_of_a_streamed_completion():
    async def go():
        server, port = await _sse_server(tokens=4, first_delay=0.1)
        async with server:
            return await stream_completion("127.0.0.1", port, {"max_tokens": 4}, timeout_s=10)

    res = asyncio.run(go())
    assert res.ok and res.output_tokens == 4
    assert 0.09 < res.ttft < 0.5
    assert len(res.itl) == 3 and all(0.8 * GAP_S < x < 0.5 for x in res.itl)


def test_http_error_and_timeout_are_failures_with_reasons():
    async def go():
        bad, port = await _sse_server(status=400)
        slow, port2 = await _sse_server(first_delay=5)
        async with bad, slow:
            return (await stream_completion("127.0.0.1", port, {"max_tokens": 4}, timeout_s=10),
                    await stream_completion("127.0.0.1", port2, {"max_tokens": 4}, timeout_s=0.5))

    err, late = asyncio.run(go())
    assert not err.ok and "HTTP 400" in err.error and "prompt too long" in err.error
    assert not late.ok and "no complete response within" in late.error


def test_run_rate_counts_and_percentiles():
    async def go():
        server, port = await _sse_server(tokens=3, first_delay=0.02)
        async with server:
            return await run_rate("127.0.0.1", port, "m", [[5, 6, 7]] * 6, 3, float("inf"), max_seconds=20)

    res = asyncio.run(go())
    assert (res["sent"], res["completed"], res["failed"], res["not_sent"]) == (6, 6, 0, 0)
    assert res["ttft_ms"]["p50"] >= 15 and res["itl_ms"]["p50"] >= 0.8 * GAP_S * 1000
    assert res["output_tok_s"] > 0 and res["request_rate"] == "inf"


def test_percentiles_interpolate_in_milliseconds():
    assert percentiles([0.001, 0.002, 0.003, 0.004, 0.005]) == pytest.approx({"p50": 3.0, "p90": 4.6, "p99": 4.96})
    assert percentiles([]) == {"p50": None, "p90": None, "p99": None}
