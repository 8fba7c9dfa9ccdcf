"""A stand-in for an alert webhook and for Slack's Web API: an HTTP server on 127.0.0.1, in the
test process, that records what is POSTed to it."""

import http.server
import json
import threading


class Recorder:
    """An HTTP server on 127.0.0.1 that records every POST (path, headers, JSON body) and answers as
    told: "ok" (204; Slack's JSON on /chat.postMessage), "error" (500) or "hang" (no answer)."""

    def __init__(self, mode: str = "ok"):
        self.mode = mode
        self.posts: list[dict] = []
        self.released = threading.Event()
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorder.posts.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                if recorder.mode == "hang":
                    recorder.released.wait(30)
                    return
                if recorder.mode == "error":
                    self.send_response(500)
                    self.end_headers()
                    return
                if self.path.endswith("chat.postMessage"):
                    answer = json.dumps({"ok": True, "channel": "C1", "ts": "1700000000.000100"}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                    return
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        self.api = f"http://127.0.0.1:{self.server.server_port}/api/"
        # A short poll interval: shutdown() waits for the serving loop's next poll.
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def alerts(self) -> list[dict]:
        return [post["body"] for post in self.posts if post["path"] == "/alerts"]

    def close(self):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
