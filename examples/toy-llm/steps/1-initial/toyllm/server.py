"""toyllm's HTTP server: GET /health and POST /v1/completions (streamed, one line per token)."""
import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from toyllm.engine import Engine


class Handler(BaseHTTPRequestHandler):
    engine = None

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        if self.path == "/health":
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        else:
            self.send_error(404)

    def do_POST(self):
        if self.path != "/v1/completions":
            self.send_error(404)
            return
        length = int(self.headers.get("Content-Length", "0"))
        try:
            request = json.loads(self.rfile.read(length) or b"{}")
            prompt = str(request["prompt"])
            max_tokens = int(request.get("max_tokens", 16))
        except (ValueError, KeyError) as exc:
            self.send_error(400, f"bad request: {exc}")
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for token in self.engine.generate(prompt, max_tokens):
            self.wfile.write(f"data: {json.dumps({'text': token})}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")


def main():
    parser = argparse.ArgumentParser(description="toyllm server")
    parser.add_argument("--model", default="toy-1b")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    Handler.engine = Engine(args.model)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(f"toyllm serving {args.model} on {args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
