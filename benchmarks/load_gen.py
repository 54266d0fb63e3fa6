"""A bounded async load generator for vLLM's OpenAI-compatible `/v1/completions` (standard library only).

The GPU machine's vLLM bundle lacks the packages `vllm bench serve` imports (aiohttp, Pillow), so this drives
the server itself: Poisson arrivals at a given rate, token-id prompts, streamed responses, and time stamps of
every streamed chunk, from which TTFT (time to first token) and ITL (gaps between later chunks) follow, the
same definitions `vllm bench serve` uses. Bounded by a request count and a deadline per rate.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RequestResult:
    ok: bool
    start: float
    ttft: float | None = None
    itl: list[float] = field(default_factory=list)
    latency: float | None = None
    output_tokens: int = 0
    error: str = ""


async def _read_http_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status_line = (await reader.readline()).decode("latin-1").strip()
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ConnectionError(f"bad HTTP status line {status_line!r}")
    headers: dict[str, str] = {}
    while True:
        line = (await reader.readline()).decode("latin-1")
        if line in ("\r\n", "\n", ""):
            break
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return int(parts[1]), headers


async def _body_chunks(reader: asyncio.StreamReader, headers: dict[str, str]):
    """Yield the response body as it arrives, undoing chunked transfer encoding."""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size_line = await reader.readline()
            if not size_line:
                return
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return
            data = await reader.readexactly(size)
            await reader.readexactly(2)  # CRLF after every chunk
            yield data
    else:
        while data := await reader.read(65536):
            yield data


async def stream_completion(host: str, port: int, payload: dict[str, Any], timeout_s: float) -> RequestResult:
    """POST one streamed completion; time stamp the first and every later content event."""
    start = time.perf_counter()
    result = RequestResult(ok=False, start=start)
    body = json.dumps(payload).encode()
    request = (
        f"POST /v1/completions HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: text/event-stream\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    writer = None
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            await writer.drain()
            status, headers = await _read_http_head(reader)
            last = None
            buf = b""
            async for data in _body_chunks(reader, headers):
                if status != 200:
                    buf += data
                    continue
                now = time.perf_counter()
                buf += data
                while b"\n\n" in buf:
                    event, buf = buf.split(b"\n\n", 1)
                    for line in event.decode().splitlines():
                        if not line.startswith("data:"):
                            continue
                        msg = line[5:].strip()
                        if msg == "[DONE]":
                            result.ok = True
                            continue
                        obj = json.loads(msg)
                        if obj.get("usage"):
                            result.output_tokens = obj["usage"].get("completion_tokens", result.output_tokens)
                        if any(c.get("text") for c in obj.get("choices", [])):
                            if last is None:
                                result.ttft = now - start
                            else:
                                result.itl.append(now - last)
                            last = now
            if status != 200:
                result.error = f"HTTP {status}: {buf[:300].decode(errors='replace')}"
                result.ok = False
    except TimeoutError:
        result.error = f"no complete response within {timeout_s:.0f} s"
        result.ok = False
    except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        result.ok = False
    finally:
        if writer is not None:
            writer.close()
    result.latency = time.perf_counter() - start
    return result


def percentiles(values: list[float], ps: tuple[int, ...] = (50, 90, 99)) -> dict[str, float | None]:
    """Percentiles in milliseconds (linear interpolation, as numpy's default)."""
    if not values:
        return {f"p{p}": None for p in ps}
    xs = sorted(values)
    out: dict[str, float | None] = {}
    for p in ps:
        k = (len(xs) - 1) * p / 100
        lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
        out[f"p{p}"] = 1000 * (xs[lo] + (xs[hi] - xs[lo]) * (k - lo))
    return out


async def run_rate(host: str, port: int, model: str, prompts: list[list[int]], output_len: int, rate: float,
                   max_seconds: float, seed: int = 0) -> dict[str, Any]:
    """Send `prompts` with Poisson arrivals at `rate` req/s (inf: all at once); stop waiting after `max_seconds`."""
    rng = random.Random(seed)
    t0 = time.perf_counter()
    deadline = t0 + max_seconds
    tasks: list[asyncio.Task[RequestResult]] = []
    for ids in prompts:
        if time.perf_counter() >= deadline:
            break
        payload = {"model": model, "prompt": ids, "max_tokens": output_len, "ignore_eos": True, "stream": True,
                   "temperature": 1.0, "stream_options": {"include_usage": True}}
        remaining = max(deadline - time.perf_counter(), 1.0)
        tasks.append(asyncio.create_task(stream_completion(host, port, payload, remaining)))
        if rate != float("inf"):
            await asyncio.sleep(rng.expovariate(rate))
    results = await asyncio.gather(*tasks)
    duration = time.perf_counter() - t0
    ok = [r for r in results if r.ok]
    ttft = [r.ttft for r in ok if r.ttft is not None]
    itl = [x for r in ok for x in r.itl]
    tpot = [(r.latency - r.ttft) / (r.output_tokens - 1) for r in ok
            if r.ttft is not None and r.latency is not None and r.output_tokens > 1]
    errors = sorted({r.error for r in results if not r.ok})
    return {
        "request_rate": "inf" if rate == float("inf") else rate,
        "sent": len(results),
        "not_sent": len(prompts) - len(results),
        "completed": len(ok),
        "failed": len(results) - len(ok),
        "errors": errors[:5],
        "duration_s": duration,
        "output_tok_s": sum(r.output_tokens for r in ok) / duration,
        "requests_s": len(ok) / duration,
        "ttft_ms": percentiles(ttft),
        "itl_ms": percentiles(itl),
        "tpot_ms": percentiles(tpot),
        "e2e_ms": percentiles([r.latency for r in ok if r.latency is not None]),
    }
