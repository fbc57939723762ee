"""Event Bus: every event it receives, it posts to each service, by the service's name (port 4005)."""

import json
import os
import socket
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = 4005
POD = os.environ.get("HOSTNAME") or socket.gethostname()
# where events go: the services' names and ports, as the cluster's DNS knows them
SUBSCRIBERS = os.environ.get("SUBSCRIBERS", "http://posts-clusterip-srv:4000/events,http://comments-srv:4001/events")
events = []


class EventBus(BaseHTTPRequestHandler):
    def do_GET(self):
        self.answer(200, {"pod": POD, "events": events})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) or b"{}"
        event = json.loads(raw)
        events.append(event)
        print(f"event {event.get('type')}", flush=True)
        for url in filter(None, SUBSCRIBERS.split(",")):
            request = urllib.request.Request(url, raw, {"Content-Type": "application/json"})
            try:
                urllib.request.urlopen(request, timeout=5).read()
                print(f"  -> {url}", flush=True)
            except OSError as err:
                print(f"  -> {url} failed: {err}", flush=True)
        self.answer(200, {"pod": POD, "status": "OK"})

    def answer(self, status, data):
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


print(f"event bus listening on port {PORT} in {POD}", flush=True)
ThreadingHTTPServer(("", PORT), EventBus).serve_forever()
