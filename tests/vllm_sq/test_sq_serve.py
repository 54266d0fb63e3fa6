"""`vllm serve <smoothquant checkpoint>` answers the OpenAI completions and chat endpoints.

The checkpoint is picked up from its config.json (no --quantization flag); it is served in bfloat16 with
static activations, so on CPUs where vLLM's oneDNN int8 GEMM passes its self-test that kernel is used.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import export_tiny

pytestmark = pytest.mark.vllm

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)
START_TIMEOUT_S = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("sq_serve")
    ckpt, _ = export_tiny(root / "llama_o3", "llama", activation_granularity="per_tensor", activation_dynamic=False)
    template = root / "chat_template.jinja"
    template.write_text(CHAT_TEMPLATE)
    port = _free_port()
    log = root / "server.log"
    vllm_cli = Path(sys.executable).with_name("vllm")
    cmd = [
        str(vllm_cli), "serve", str(ckpt), "--host", "127.0.0.1", "--port", str(port), "--dtype", "bfloat16",
        "--max-model-len", "256", "--max-num-seqs", "4", "--enforce-eager", "--served-model-name", "tiny-sq",
        "--chat-template", str(template),
    ]
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", HF_HUB_OFFLINE="1")
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vllm serve exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vllm serve not healthy after {START_TIMEOUT_S} s:\n{log.read_text()[-4000:]}")
            time.sleep(2)
        yield base, log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_server_uses_smoothquant(server: tuple[str, Path]) -> None:
    _, log = server
    text = log.read_text()
    assert "quantization=smoothquant" in text
    assert "smoothquant: model.layers.0.self_attn.qkv_proj uses kernel" in text


def test_completions_endpoint(server: tuple[str, Path]) -> None:
    base, _ = server
    reply = _post(f"{base}/v1/completions", {
        "model": "tiny-sq", "prompt": "the quick brown fox", "max_tokens": 8, "temperature": 0, "ignore_eos": True,
    })
    assert reply["usage"]["completion_tokens"] == 8
    assert isinstance(reply["choices"][0]["text"], str) and reply["choices"][0]["text"]


def test_chat_completions_endpoint(server: tuple[str, Path]) -> None:
    base, _ = server
    reply = _post(f"{base}/v1/chat/completions", {
        "model": "tiny-sq", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 6,
        "temperature": 0, "ignore_eos": True,
    })
    assert reply["usage"]["completion_tokens"] == 6
    assert reply["choices"][0]["message"]["role"] == "assistant"
    assert reply["choices"][0]["message"]["content"]
