"""Running ``pg_autoctl`` for a formation folder (gis.core.replicas): commands, and the background
service (``pg_autoctl run``) of each node.

pg_autoctl refuses to run as root, so as root it runs as the server's OS user, as PostgreSQL
does in gis.core.cluster. Its config, state and pid files go under the formation's folder
(the XDG variables), so a formation in a temporary folder leaves nothing behind elsewhere.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from gis.core import cluster
from gis.core.cluster import ClusterError


def env(base: Path) -> list[str]:
    # pg_autoctl keeps its config in XDG_CONFIG_HOME, state in XDG_DATA_HOME, pid files in
    # XDG_RUNTIME_DIR: all inside the formation's folder.
    return [
        "env",
        f"XDG_CONFIG_HOME={base / 'config'}",
        f"XDG_DATA_HOME={base / 'share'}",
        f"XDG_RUNTIME_DIR={base / 'run'}",
        "PGHOST=",  # the local socket folder pg_autoctl expects is the server's default
    ]


def run(base: Path, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """One pg_autoctl command; with ``check``, a failure raises ClusterError with its last error line."""
    cmd = [*env(base), "pg_autoctl", *args]
    proc = subprocess.run(cluster._as_owner(cmd), capture_output=True, text=True, timeout=timeout, cwd="/")
    if check and proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
        errors = [ln for ln in lines if " ERROR " in ln or " FATAL " in ln] or lines
        raise ClusterError(f"pg_autoctl {args[0]} {args[1] if len(args) > 1 else ''} failed: {errors[-1:]}")
    return proc


# The services this process started, reaped when they stop.
_children: dict[str, subprocess.Popen[bytes]] = {}


def start(base: Path, pgdata: Path, log: Path) -> None:
    """Start ``pg_autoctl run`` for the node in ``pgdata`` in the background, in a session of its
    own (it outlives a `gridmap db up`), output appended to ``log``; no-op while it runs."""
    if is_running(base, pgdata):
        return
    child = _children.pop(str(pgdata), None)
    if child is not None:
        child.poll()  # reap the previous run
    cmd = cluster._as_owner([*env(base), "pg_autoctl", "run", "--pgdata", str(pgdata)])
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd="/")
    _children[str(pgdata)] = proc
    _group_file(base, pgdata).write_text(f"{proc.pid}\n")


def _group_file(base: Path, pgdata: Path) -> Path:
    """The process group of the node's service."""
    return base / "run" / f"{pgdata.name}.pgid"


def _end_group(base: Path, pgdata: Path) -> None:
    """Signal what is left of the service's process group once it has stopped: a helper caught
    mid-start by the stop can outlive the service."""
    path = _group_file(base, pgdata)
    if not path.exists():
        return
    pgid = int(path.read_text())
    path.unlink()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.5)


def is_running(base: Path, pgdata: Path) -> bool:
    """Whether the node's service runs (pg_autoctl's pid file names a live process)."""
    return run(base, "status", "--pgdata", str(pgdata), check=False, timeout=30).returncode == 0


def stop(base: Path, pgdata: Path, *, immediate: bool = False, wait_s: float = 60) -> bool:
    """Stop the node's service and its postgres; ``immediate`` is a crash (no checkpoint, clients
    cut). Returns False when it was not running."""
    if not is_running(base, pgdata):
        return False
    run(base, "stop", "--pgdata", str(pgdata), *(["--immediate"] if immediate else []), check=False, timeout=60)
    deadline = time.monotonic() + wait_s
    while is_running(base, pgdata):
        if time.monotonic() > deadline:
            raise ClusterError(f"the service of {pgdata} did not stop within {wait_s:.0f} s")
        time.sleep(0.1)
    _end_group(base, pgdata)
    child = _children.pop(str(pgdata), None)
    if child is not None:
        child.wait(timeout=30)
    return True
