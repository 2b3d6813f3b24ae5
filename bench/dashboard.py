#!/usr/bin/env python3
"""The dashboard on a long study: API latency and the browser's time to first render.

    python3 bench/dashboard.py                      # 100,000 trials
    python3 bench/dashboard.py --trials 10000 --repeats 20

Builds postdoc and the store filler in release mode, writes the tiny-posttrain example to a
temporary folder, fills its lineage store with a synthetic study of --trials trials through
the store's own calls (crates/dashboard/examples/populate.rs), serves it with `postdoc serve`,
then measures:
- each API route, --repeats times one after another: p50 and p99 latency and the answer's size;
- the routes that read the whole lineage again, each time right after a change to the study;
- the overview and the lineage tree in headless Chromium (chromedriver on PATH): the time from
  navigation to the page being drawn (performance.now() when its chart is in the document),
  median of 5 fresh loads;
- the time from starting the server to its giving out its address (it reads the study first),
  and its peak resident memory.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def fetch(url, data=None, method=None):
    req = urllib.request.Request(url, data=None if data is None else json.dumps(data).encode(), method=method,
                                 headers={"content-type": "application/json"} if data is not None else {})
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.read()


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


class Chrome:
    """Headless Chromium through chromedriver's WebDriver API."""

    def __init__(self):
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        driver = shutil.which("chromedriver")
        if not chromium or not driver:
            raise SystemExit("needs chromium and chromedriver on PATH (Debian: chromium chromium-driver)")
        port = free_port()
        self.proc = subprocess.Popen([driver, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                fetch(f"{self.base}/status")
                break
            except OSError:
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": chromium, "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                         "--window-size=1280,1000", "--no-first-run", "--disable-extensions"]}}}}
        self.session = self.base + "/session/" + json.loads(fetch(f"{self.base}/session", caps))["value"]["sessionId"]

    def call(self, path, body=None, method=None):
        return json.loads(fetch(self.session + path, body, method))["value"]

    def first_render(self, url, ready):
        """Milliseconds from navigation to `ready` (a JS expression) holding."""
        self.call("/url", {"url": "about:blank"})
        self.call("/url", {"url": url})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            at = self.call("/execute/sync", {"script": f"return ({ready}) ? performance.now() : null", "args": []})
            if at is not None:
                return at
            time.sleep(0.01)
        raise SystemExit(f"{url}: not drawn within 120 s")

    def close(self):
        try:
            fetch(self.session, method="DELETE")
        finally:
            self.proc.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=50)
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "postdoc"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "postdoc-dashboard", "--example", "populate"], cwd=ROOT,
                   check=True)
    postdoc = os.path.join(ROOT, "target", "release", "postdoc")
    populate = os.path.join(ROOT, "target", "release", "examples", "populate")
    work = tempfile.mkdtemp(prefix="postdoc-dashboard-bench-")
    recipe = os.path.join(work, "recipe")
    subprocess.run([postdoc, "example", "tiny-posttrain", recipe], check=True, stdout=subprocess.DEVNULL)
    started = time.monotonic()
    subprocess.run([populate, f"sqlite://{recipe}/.postdoc/lineage.db", os.path.join(recipe, "postdoc.toml"),
                    str(a.trials)], check=True, stdout=subprocess.DEVNULL)
    filled = time.monotonic() - started
    db_mb = os.path.getsize(os.path.join(recipe, ".postdoc", "lineage.db")) / 1e6
    port = free_port()
    launched = time.monotonic()
    server = subprocess.Popen([postdoc, "-C", recipe, "serve", "--port", str(port)], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    # The server gives out its address once it has read the study.
    url = server.stdout.readline().split()[1]
    ready_after = time.monotonic() - launched
    rows = []
    try:
        mid = a.trials // 2
        for route in ["/api/overview", "/api/trials", f"/api/trials/{mid}", "/api/specialists", "/api/notes", "/api/papers",
                      "/api/data"]:
            times, size = [], 0
            for _ in range(a.repeats):
                t0 = time.perf_counter()
                size = len(fetch(url.rstrip("/") + route))
                times.append((time.perf_counter() - t0) * 1000)
            rows.append((route, statistics.median(times), percentile(times, 99), size))
        # A running study changes every few seconds: each change (here a note, an event like any
        # other) makes the next request bring the server's copy up to date and compute again.
        for route in ["/api/overview", "/api/trials", "/api/specialists", "/api/notes", "/api/data"]:
            times, size = [], 0
            for i in range(a.repeats):
                fetch(url.rstrip("/") + "/api/notes", {"text": f"benchmark change {i}"})
                t0 = time.perf_counter()
                size = len(fetch(url.rstrip("/") + route))
                times.append((time.perf_counter() - t0) * 1000)
            rows.append((route + " after a change", statistics.median(times), percentile(times, 99), size))
        chrome = Chrome()
        try:
            renders = {}
            for page, ready in [("#/", "document.querySelector('main .charts svg')"),
                                ("#/tree", "document.querySelector('svg[aria-label=\"lineage tree\"]')")]:
                renders[page] = [chrome.first_render(url + page, ready) for _ in range(5)]
        finally:
            chrome.close()
        with open(f"/proc/{server.pid}/status") as f:
            peak = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024
    finally:
        server.kill()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{a.trials + 1} trials written in {filled:.0f} s; store {db_mb:.0f} MB; server peak {peak:.0f} MiB; "
          f"ready {ready_after * 1000:.0f} ms after start\n")
    print("| route | p50 ms | p99 ms | answer KB |\n|---|---:|---:|---:|")
    for route, p50, p99, size in rows:
        print(f"| `{route}` | {p50:.1f} | {p99:.1f} | {size / 1000:.0f} |")
    print("\n| page | first render ms (median of 5) | all five |\n|---|---:|---|")
    for page, ms in renders.items():
        print(f"| `{page}` | {statistics.median(ms):.0f} | {', '.join(f'{m:.0f}' for m in ms)} |")


if __name__ == "__main__":
    sys.exit(main())
