"""Posts: a tiny blog service, the workshop's first app.

It keeps posts in memory, says which pod (or container) answered each request, and tells the
event bus about every new post. It listens on port 4000, as the course's Posts service does.
"""

import json
import os
import socket
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = 4000
POD = os.environ.get("HOSTNAME") or socket.gethostname()
EVENT_BUS = os.environ.get("EVENT_BUS_URL", "")  # e.g. http://event-bus-srv:4005/events
posts = {}


def tell_event_bus(event):
    """POST an event to the event bus, if one is configured."""
    if not EVENT_BUS:
        return
    request = urllib.request.Request(EVENT_BUS, json.dumps(event).encode(), {"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(request, timeout=5).read()
    except OSError as err:
        print(f"could not reach the event bus at {EVENT_BUS}: {err}", flush=True)


class Posts(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path in ("/", "/posts"):
            self.answer(200, {"pod": POD, "posts": list(posts.values())})
        else:
            self.answer(404, {"pod": POD, "error": f"no such page: {self.path}"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path == "/posts":
            post = {"id": f"p{len(posts) + 1}", "title": body.get("title", "untitled")}
            posts[post["id"]] = post
            print(f"created post {post['id']}: {post['title']}", flush=True)
            tell_event_bus({"type": "PostCreated", "data": post})
            self.answer(201, {"pod": POD, "post": post})
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
        pass  # one line per post is enough


print(f"posts listening on port {PORT} in {POD}", flush=True)
ThreadingHTTPServer(("", PORT), Posts).serve_forever()
