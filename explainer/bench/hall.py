"""A front end stand-in for the load test: what a page asks of the library, over plain HTTP.

Locust's simulated students (``tests/load/locustfile.py``) speak HTTP; the app speaks Streamlit's
WebSocket protocol. This server stands where a Streamlit front end stands and does what its pages
do for each student, with the same library calls and the same sharing (one model, one trace per
prompt for everyone), one thread per connection as Streamlit runs one per session:

- ``GET /open``: the app opens on the default prompt (shared: traced once for the whole room);
- ``POST /prompt`` (the text as the body): a student's own prompt is traced;
- ``POST /why``: *Why this answer?* on that prompt: direct logit attribution (here, from the
  trace) and the input attribution of the top answer (on the cluster when there is one).

With ``LLM_EXPLAINER_BACKEND`` set the heavy parts go to the cluster, exactly as in the app.
``python -m explainer.bench.hall --port P [--method gradient_x_input]``.
"""
from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import explainer
from explainer.analysis.attribution_inputs import input_attribution
from explainer.analysis.why import answer_pushes
from explainer.cache import ByteLRU
from explainer.trace import Trace

DEFAULT_PROMPT = "The capital of France is Paris. The capital of Germany is"
MAX_BODY = 16_384


class Hall:
    """One model and one shared trace cache, as a Streamlit front end keeps them."""

    def __init__(self, model_name: str | None = None, method: str = "gradient_x_input") -> None:
        self.model = explainer.load_model(model_name)
        self.method = method
        self.traces: ByteLRU[Trace] = ByteLRU(2 * 2**30, size_of=Trace.nbytes)

    def trace(self, text: str) -> Trace:
        return self.traces.get_or_compute(text, lambda: explainer.trace(self.model, text))

    def open(self) -> dict[str, Any]:
        return {"top": int(self.trace(DEFAULT_PROMPT).next_token_logits.argmax())}

    def prompt(self, text: str) -> dict[str, Any]:
        return {"tokens": self.trace(text).n_tokens}

    def why(self, text: str) -> dict[str, Any]:
        pushes = answer_pushes(self.model, self.trace(text))
        words = input_attribution(self.model, text, pushes.attribution.target, self.method)
        return {"answer": pushes.target_label, "top_word": int(words.scores.argmax())}


def _handler(hall: Hall) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:          # quiet
            pass

        def do_GET(self) -> None:
            self._answer(hall.open if self.path.startswith("/open") else None)

        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length", 0))
            text = self.rfile.read(min(size, MAX_BODY)).decode("utf-8", "replace")
            action = {"/prompt": hall.prompt, "/why": hall.why}.get(self.path)
            self._answer(None if action is None else lambda: action(text))

        def _answer(self, action: Callable[[], dict] | None) -> None:
            if action is None:
                status, body = 404, {"error": "no such page"}
            else:
                try:
                    status, body = 200, action()
                except Exception as err:  # noqa: BLE001 - a failed request is what the load test counts
                    status, body = 500, {"error": type(err).__name__, "message": str(err)[:500]}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024                                # a lecture hall connects at once (listen backlog)


def serve(port: int, model_name: str | None = None, method: str = "gradient_x_input") -> ThreadingHTTPServer:
    """The stand-in, listening on 127.0.0.1:``port`` (call ``serve_forever``)."""
    hall = Hall(model_name, method)
    hall.open()                                              # warm: the model and the default trace
    return _Server(("127.0.0.1", port), _handler(hall))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default=None)
    parser.add_argument("--method", default="gradient_x_input")
    args = parser.parse_args(argv)
    server = serve(args.port, args.model, args.method)
    print(f"ready on http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
