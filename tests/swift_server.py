"""A real S3-protocol server on 127.0.0.1 for the tests: OpenStack Swift with its s3api middleware.

One replica, one device, rings built in a temporary folder; account, container, object and proxy
servers each run as a process (``workers = 0``: no forking) on free ports. Credentials: access key
``test:tester``, secret ``testing`` (tempauth).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

__all__ = ["SwiftS3"]

ACCESS_KEY = "test:tester"
SECRET_KEY = "testing"
_BIN = Path(sys.executable).parent

_SWIFT_CONF = """\
[swift-hash]
swift_hash_path_suffix = nbcache-tests
swift_hash_path_prefix = nbcache-tests

[storage-policy:0]
name = gold
default = yes
"""

_COMMON = """\
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
workers = 0
swift_dir = {etc}
devices = {devices}
mount_check = false
log_level = WARNING
log_address = /nonexistent
{user}
"""

_SERVER = _COMMON + """
[pipeline:main]
pipeline = {name}-server

[app:{name}-server]
use = egg:swift#{name}
"""

_PROXY = _COMMON + """
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:s3api]
use = egg:swift#s3api

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SwiftS3:
    """Start with :meth:`start`, stop with :meth:`stop`; :meth:`stop_proxy`/:meth:`start_proxy`
    take the S3 endpoint away and bring it back (same port) while the data stays."""

    def __init__(self, root: Path):
        self.root = root
        self.etc = root / "etc"
        self.devices = root / "srv"
        self.logs = root / "logs"
        self.ports = {name: free_port() for name in ("account", "container", "object", "proxy")}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['proxy']}"

    def env(self) -> dict[str, str]:
        """Environment for a client process (s3fs/botocore read these)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def _configure(self) -> None:
        for folder in (self.etc, self.devices / "d1", self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        (self.etc / "swift.conf").write_text(_SWIFT_CONF)
        user = "user = root" if os.geteuid() == 0 else ""
        for name in ("account", "container", "object"):
            port = self.ports[name]
            text = _SERVER.format(port=port, etc=self.etc, devices=self.devices, user=user, name=name)
            (self.etc / f"{name}-server.conf").write_text(text)
            builder = str(self.etc / f"{name}.builder")
            for args in (["create", "0", "1", "1"], ["add", f"r1z1-127.0.0.1:{port}/d1", "1"], ["rebalance"]):
                proc = subprocess.run([str(_BIN / "swift-ring-builder"), builder, *args], capture_output=True, text=True)
                # rebalance exits 1 with a warning on a one-device ring; the ring is written anyway.
                if proc.returncode not in (0, 1):
                    raise RuntimeError(f"swift-ring-builder {args} failed:\n{proc.stdout}\n{proc.stderr}")
            if not (self.etc / f"{name}.ring.gz").exists():
                raise RuntimeError(f"no {name} ring was written")
        proxy = _PROXY.format(port=self.ports["proxy"], etc=self.etc, devices=self.devices, user=user)
        (self.etc / "proxy-server.conf").write_text(proxy)

    def _spawn(self, name: str) -> None:
        log = open(self.logs / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(
            [str(_BIN / f"swift-{name}-server"), str(self.etc / f"{name}-server.conf")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def _wait_port(self, name: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            proc = self.procs[name]
            if proc.poll() is not None:
                raise RuntimeError(f"swift {name} server exited:\n{self.log(name)}")
            try:
                with socket.create_connection(("127.0.0.1", self.ports[name]), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"swift {name} server did not listen in time:\n{self.log(name)}")

    def log(self, name: str) -> str:
        try:
            return (self.logs / f"{name}.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def start(self, timeout: float = 30.0) -> SwiftS3:
        self._configure()
        for name in ("account", "container", "object"):
            self._spawn(name)
        self.start_proxy(timeout)
        for name in ("account", "container", "object"):
            self._wait_port(name, time.monotonic() + timeout)
        return self

    def start_proxy(self, timeout: float = 30.0) -> None:
        self._spawn("proxy")
        deadline = time.monotonic() + timeout
        self._wait_port("proxy", deadline)
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.endpoint}/healthcheck", timeout=2) as resp:
                    if resp.read() == b"OK":
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"swift proxy is not healthy:\n{self.log('proxy')}")

    def _kill(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop_proxy(self) -> None:
        self._kill("proxy")

    def stop(self) -> None:
        for name in list(self.procs):
            self._kill(name)

    def make_bucket(self, name: str) -> None:
        import s3fs

        fs = s3fs.S3FileSystem(key=ACCESS_KEY, secret=SECRET_KEY, endpoint_url=self.endpoint, skip_instance_cache=True)
        fs.mkdir(name)
