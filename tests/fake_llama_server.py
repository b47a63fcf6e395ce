"""A stand-in for a llama.cpp server process at the HTTP edge: it takes llama-server's
arguments, answers /v1/models and /v1/chat/completions with a fixed reply, and appends each
chat request's JSON to the file named by FAKE_LLAMA_LOG. The runtime tests start it as a
runtime's program, to see how the service starts, warms, supervises and ends such a child."""

from __future__ import annotations

import argparse
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def _send(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._send({"object": "list", "data": [{"id": self.server.alias, "object": "model"}]})

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if log := os.environ.get("FAKE_LLAMA_LOG"):
            with open(log, "a", encoding="utf-8") as out:
                out.write(json.dumps(request) + "\n")
        self._send({
            "id": "fake", "object": "chat.completion", "created": 0, "model": self.server.alias,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "{\"sentences\": [], \"answer\": \"\"}"}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--alias", default="fake")
    args, _ = parser.parse_known_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.alias = args.alias
    server.serve_forever()


if __name__ == "__main__":
    main()
