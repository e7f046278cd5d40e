"""Headless Chromium for the browser tests: a minimal DevTools Protocol client and a fixture.

The dashboard and the docs site are checked in a real browser with the network off.
Chromium is Debian's (`apt-get install chromium`, done by scripts/test.sh); a missing
browser fails the test unless AGENT_USAGE_ALLOW_NO_BROWSER=1, and AGENT_USAGE_CHROMIUM
picks another binary.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-port=0",
)


def _chromium_path() -> str | None:
    for name in (os.environ.get("AGENT_USAGE_CHROMIUM"), "chromium", "chromium-browser"):
        if name and (found := shutil.which(name)):
            return found
    return None


class DevTools:
    """A minimal Chrome DevTools Protocol client over one page session."""

    def __init__(self, ws_url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=20, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]

    def call(self, method: str, *, timeout: float = 20, **params: Any) -> Any:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if hasattr(self, "session"):
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)
        raise TimeoutError(method)

    def wait_for(self, method: str, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.events:
                if e["method"] == method:
                    return e
            reply = json.loads(self.ws.recv())
            if "method" in reply:
                self.events.append(reply)
        raise TimeoutError(method)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")


@pytest.fixture
def browser() -> Iterator[DevTools]:
    """A fresh headless Chromium; fails (not skips) when missing, unless allowed."""
    binary = _chromium_path()
    if binary is None:
        if os.environ.get("AGENT_USAGE_ALLOW_NO_BROWSER") == "1":
            pytest.skip("chromium not installed (AGENT_USAGE_ALLOW_NO_BROWSER=1)")
        pytest.fail(
            "chromium not found: install Debian's chromium (apt-get install chromium) "
            "or set AGENT_USAGE_ALLOW_NO_BROWSER=1 to skip the browser test"
        )
    profile = tempfile.mkdtemp(prefix="agent-usage-chromium-")
    proc = subprocess.Popen(
        [binary, *BROWSER_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: teardown ends all its children
    )
    client = None
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 20
        while not (port_file.exists() and len(port_file.read_text().split()) == 2):
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                pytest.fail(f"chromium did not start: {err[-2000:]}")
            time.sleep(0.05)
        port, ws_path = port_file.read_text().split()
        client = DevTools(f"ws://127.0.0.1:{port}{ws_path}")
        yield client
    finally:
        if client is not None:
            client.ws.close()
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        if proc.stderr:
            proc.stderr.close()
        shutil.rmtree(profile, ignore_errors=True)


def open_offline(browser: DevTools, url: str) -> None:
    """Load `url` with the network off, collecting page, console and network events."""
    for domain in ("Page", "Runtime", "Log", "Network"):
        browser.call(f"{domain}.enable")
    browser.call(
        "Network.emulateNetworkConditions",
        offline=True,
        latency=0,
        downloadThroughput=-1,
        uploadThroughput=-1,
    )
    browser.call("Emulation.setDeviceMetricsOverride", width=1280, height=900,
                 deviceScaleFactor=1, mobile=False)  # fmt: skip
    browser.call("Page.navigate", url=url)
    browser.wait_for("Page.loadEventFired")


def problems(browser: DevTools) -> list[dict[str, Any]]:
    """Exceptions, dialogs and console or log errors the page raised."""
    return [
        e
        for e in browser.events
        if e["method"] in ("Runtime.exceptionThrown", "Page.javascriptDialogOpening")
        or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
        or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]


def requested(browser: DevTools) -> set[str]:
    """Every URL the page asked for."""
    return {
        e["params"]["request"]["url"]
        for e in browser.events
        if e["method"] == "Network.requestWillBeSent"
    }
