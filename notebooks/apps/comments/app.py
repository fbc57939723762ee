"""Comments: comments per post, on port 4001. It tells the event bus about each new comment."""

import json
import os
import socket
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = 4001
POD = os.environ.get("HOSTNAME") or socket.gethostname()
EVENT_BUS = os.environ.get("EVENT_BUS_URL", "")
comments = {}  # post id -> its comments


def tell_event_bus(event):
    """POST an event to the event bus, if one is configured."""
    if not EVENT_BUS:
        return
    request = urllib.request.Request(EVENT_BUS, json.dumps(event).encode(), {"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(request, timeout=5).read()
    except OSError as err:
        print(f"could not reach the event bus at {EVENT_BUS}: {err}", flush=True)


class Comments(BaseHTTPRequestHandler):
    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "posts" and parts[2] == "comments":
            self.answer(200, {"pod": POD, "comments": comments.get(parts[1], [])})
        else:
            self.answer(200, {"pod": POD, "posts": len(comments)})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        parts = self.path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "posts" and parts[2] == "comments":
            comment = {"id": f"c{sum(map(len, comments.values())) + 1}", "post": parts[1],
                       "content": body.get("content", "")}
            comments.setdefault(parts[1], []).append(comment)
            print(f"created comment {comment['id']} on post {parts[1]}", flush=True)
            tell_event_bus({"type": "CommentCreated", "data": comment})
            self.answer(201, {"pod": POD, "comment": comment})
        elif self.path == "/events":
            print(f"received event {body.get('type')}", flush=True)
            self.answer(200, {"pod": POD})
        else:
            self.answer(404, {"pod": POD, "error": f"no such page: {self.path}"})

    def answer(self, status, data):
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


print(f"comments listening on port {PORT} in {POD}", flush=True)
ThreadingHTTPServer(("", PORT), Comments).serve_forever()
