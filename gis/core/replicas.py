"""A local pg_auto_failover formation: a monitor, a primary and N synchronous standbys.

``gridmap db up --replicas N`` runs it instead of the single local cluster (gis.core.cluster). Each
node is a PostgreSQL cluster of its own under ``<base>/<name>`` (base: ``var/pgaf`` by default),
run by one ``pg_autoctl run`` process started in the background (its own session, output in
``<base>/logs/<name>.log``) that supervises the node's postgres and reports to the monitor. The
monitor decides failovers: when the primary stops answering its health checks, it promotes the
standby, and the API, whose URL lists every node with ``target_session_attrs=read-write``, finds
the new primary by itself on its next connection.

pg_autoctl's config, state and pid files go under ``base`` too (gis.core.autoctl). Nodes listen
on 127.0.0.1 only, with trust authentication (pg_autoctl's ``--auth trust``): this is a
single-machine formation for development and tests; a production layout (one node per machine,
``--ssl-self-signed`` or certificates, scram passwords) is described in the README.

Commits are synchronous: each standby joins with ``--replication-quorum true``, so the monitor
sets the primary's ``synchronous_standby_names`` to ``ANY 1 (...)`` and a commit is acknowledged
once a standby has it. ``number_sync_standbys`` stays 0, which means: when every standby is gone,
the primary goes to ``wait_primary`` and accepts writes alone (rather than stopping all writes
because the only standby died); the monitor turns synchronous replication back on when a standby
has caught up.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gis.core import autoctl, cluster
from gis.core.cluster import ClusterError
from gis.core.settings import Settings

STATE_FILE = "formation.json"
MONITOR = "monitor"
# The monitor's defaults wait 20 s before calling a node unhealthy (made for networks that
# hiccup); on one machine a node that misses two 1-second checks is down.
_MONITOR_TUNING = {
    "pgautofailover.health_check_period": 1000,
    "pgautofailover.health_check_timeout": 1000,
    "pgautofailover.health_check_max_retries": 1,
    "pgautofailover.health_check_retry_delay": 500,
    # startup_grace_period keeps its 10 s: when a stopped formation starts again, its primary
    # has that long to come up before the monitor would promote the standby instead.
}
# pg_autoctl sizes shared_buffers at a quarter of the RAM for every node; three nodes on one
# shared machine get a modest size instead. Appended after pg_autoctl's include, so they win.
_NODE_CONF = """
# gridmap: a local formation (gis.core.replicas)
listen_addresses = '127.0.0.1'
shared_buffers = 256MB
work_mem = 32MB
maintenance_work_mem = 256MB
effective_cache_size = 2GB
max_connections = 200
jit = off
random_page_cost = 1.1
"""


@dataclass(frozen=True)
class Formation:
    """Where a formation lives and its ports: the monitor's, then one per data node."""

    base: Path
    monitor_port: int
    node_ports: tuple[int, ...]

    @property
    def names(self) -> list[str]:
        return [f"node{i + 1}" for i in range(len(self.node_ports))]

    def pgdata(self, name: str) -> Path:
        return self.base / name

    def log(self, name: str) -> Path:
        return self.base / "logs" / f"{name}.log"

    def port(self, name: str) -> int:
        return self.monitor_port if name == MONITOR else self.node_ports[self.names.index(name)]

    @property
    def monitor_uri(self) -> str:
        return f"postgres://autoctl_node@127.0.0.1:{self.monitor_port}/pg_auto_failover?sslmode=disable"


def ensure_installed() -> Path:
    """The server's bin folder, with pg_auto_failover installed from the OS packages if missing."""
    bindir = cluster.ensure_installed()
    version = bindir.parent.name
    if not _failover_ok(version):
        cluster._apt_install([f"postgresql-{version}-auto-failover", "pg-auto-failover-cli"])
        if not _failover_ok(version):
            raise ClusterError(
                f"pg_auto_failover is missing: install postgresql-{version}-auto-failover and pg-auto-failover-cli"
            )
    return bindir


def _failover_ok(version: str) -> bool:
    extension = Path(f"/usr/share/postgresql/{version}/extension/pgautofailover.control")
    return extension.exists() and shutil.which("pg_autoctl") is not None


def _prepare_base(base: Path) -> None:
    """Create the folder so that the server's OS user owns it and can reach it."""
    for sub in ("", "config", "share", "run", "logs"):
        (base / sub).mkdir(parents=True, exist_ok=True)
        if cluster._is_root():
            os.chown(base / sub, pwd.getpwnam(cluster.OWNER).pw_uid, pwd.getpwnam(cluster.OWNER).pw_gid)
    if cluster._is_root() and not cluster._owner_can_reach(base):
        raise ClusterError(
            f"the {cluster.OWNER} OS user cannot reach {base}: choose a folder whose parents it may traverse"
        )


def save(formation: Formation) -> None:
    data = {"monitor_port": formation.monitor_port, "node_ports": list(formation.node_ports)}
    (formation.base / STATE_FILE).write_text(json.dumps(data) + "\n")


def load(base: Path) -> Formation | None:
    """The formation created in ``base``, or None when there is none."""
    path = base / STATE_FILE
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return Formation(base=base, monitor_port=int(data["monitor_port"]), node_ports=tuple(data["node_ports"]))


def _append_conf(pgdata: Path, text: str) -> None:
    with (pgdata / "postgresql.conf").open("a") as fh:
        fh.write(text)


def start_node(formation: Formation, name: str) -> None:
    """Start the node's ``pg_autoctl run`` in the background (no-op while it runs)."""
    autoctl.start(formation.base, formation.pgdata(name), formation.log(name))


def is_running(formation: Formation, name: str) -> bool:
    return autoctl.is_running(formation.base, formation.pgdata(name))


def stop_node(formation: Formation, name: str, *, immediate: bool = False, wait_s: float = 60) -> bool:
    """Stop a node's service and its postgres; ``immediate`` is a crash (no checkpoint, clients cut).
    Returns False when it was not running."""
    return autoctl.stop(formation.base, formation.pgdata(name), immediate=immediate, wait_s=wait_s)


def nodes(formation: Formation) -> list[dict[str, object]]:
    """The monitor's view of the data nodes: name, port, reported and assigned state, health."""
    proc = autoctl.run(formation.base, "show", "state", "--json", "--monitor", formation.monitor_uri, timeout=30)
    rows = json.loads(proc.stdout or "[]")
    return [
        {
            "name": row["nodename"],
            "port": int(row["nodeport"]),
            "reported": row["current_group_state"],
            "assigned": row["assigned_group_state"],
            "healthy": row.get("health") == 1,
        }
        for row in rows
    ]


def primary(formation: Formation) -> str | None:
    """The node that is primary now (reported and assigned), or None during a failover."""
    for node in nodes(formation):
        if node["reported"] in ("primary", "wait_primary") and node["reported"] == node["assigned"]:
            return str(node["name"])
    return None


def _wait(formation: Formation, done: Callable[[list[dict[str, object]]], bool], what: str, timeout_s: float) -> str:
    """Poll the monitor until ``done(nodes)``; returns the primary's name then ('' if none)."""
    deadline = time.monotonic() + timeout_s
    seen: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        try:
            seen = nodes(formation)
        except ClusterError:
            time.sleep(0.2)
            continue
        if done(seen):
            return next((str(n["name"]) for n in seen if n["reported"] == "primary"), "")
        time.sleep(0.25)
    raise ClusterError(f"the formation in {formation.base} did not {what} within {timeout_s:.0f} s: {seen}")


def create(base: Path, monitor_port: int, replicas: int | None, *, detect_ms: int = 3000) -> Formation:
    """Create (once) and start the formation: monitor, primary, ``replicas`` standbys. Safe to call
    again: nodes already created are started if stopped.

    ``detect_ms``: how long the primary may miss health checks before the monitor fails over.
    The monitor then still waits ``detect_ms + 2 s`` for the old primary to demote itself (it
    does so on its own after ``detect_ms`` without monitor and standby: a primary cut off by the
    network stops taking writes before the standby is promoted, so there are never two)."""
    bindir = ensure_installed()
    existing = load(base)
    if existing is None and replicas is None:
        raise ClusterError(f"no formation in {base} yet: create it with `gridmap db up --replicas 1`")
    if existing is not None and replicas is not None and len(existing.node_ports) != replicas + 1:
        raise ClusterError(
            f"the formation in {base} has {len(existing.node_ports) - 1} standby(s), not {replicas}: "
            f"`gridmap db down` and remove {base} to change it"
        )
    formation = existing or Formation(
        base, monitor_port, tuple(monitor_port + 1 + i for i in range((replicas or 0) + 1))
    )
    _prepare_base(base)
    save(formation)
    pg_ctl = str(bindir / "pg_ctl")
    common = ["--pgctl", pg_ctl, "--hostname", "127.0.0.1", "--auth", "trust", "--no-ssl"]
    if not (formation.pgdata(MONITOR) / "PG_VERSION").exists():
        _port_or_fail(formation.monitor_port)
        pgdata = str(formation.pgdata(MONITOR))
        autoctl.run(base, "create", "monitor", "--pgdata", pgdata, "--pgport", str(formation.monitor_port), *common)
        tuning = {
            **_MONITOR_TUNING,
            "pgautofailover.node_considered_unhealthy_timeout": detect_ms,
            "pgautofailover.primary_demote_timeout": detect_ms + 2000,
        }
        _append_conf(formation.pgdata(MONITOR), _NODE_CONF + "".join(f"{k} = {v}\n" for k, v in tuning.items()))
    start_node(formation, MONITOR)
    _wait(formation, lambda seen: True, f"answer (see {formation.log(MONITOR)})", 60)
    for i, name in enumerate(formation.names):
        if not (formation.pgdata(name) / "PG_VERSION").exists():
            _port_or_fail(formation.port(name))
            # A standby is created by pg_basebackup from the primary, settings included.
            autoctl.run(
                base, "create", "postgres", "--pgdata", str(formation.pgdata(name)),
                "--pgport", str(formation.port(name)), "--listen", "127.0.0.1", "--name", name,
                "--monitor", formation.monitor_uri, "--replication-quorum", "true", *common,
            )  # fmt: skip
            if i == 0:
                _append_conf(formation.pgdata(name), _NODE_CONF)
            partition_s = str(max(1, round(detect_ms / 1000)))
            pgdata = str(formation.pgdata(name))
            autoctl.run(base, "config", "set", "--pgdata", pgdata, "timeout.network_partition_timeout", partition_s)
        start_node(formation, name)
        if i == 0 and existing is None:
            _wait(formation, _is_single, "start its primary", 120)
    wait_healthy(formation)
    return formation


def _ready(formation: Formation, node: dict[str, object]) -> bool:
    proc = subprocess.run(
        [str(cluster.ensure_installed() / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(node["port"]), "-t", "2"],
        timeout=10,
    )
    return proc.returncode == 0


def _is_single(seen: list[dict[str, object]]) -> bool:
    return len(seen) == 1 and seen[0]["reported"] == seen[0]["assigned"] == "single"


def wait_healthy(formation: Formation, timeout_s: float = 180) -> str:
    """Wait until one node is primary and every other one a secondary; return the primary's name."""
    want = ["primary"] + ["secondary"] * (len(formation.names) - 1)

    def settled(seen: list[dict[str, object]]) -> bool:
        same = all(n["reported"] == n["assigned"] and n["healthy"] for n in seen)
        # After a restart the monitor shows the states from before it stopped until the nodes
        # report again: ask the servers themselves too.
        return same and sorted(str(n["reported"]) for n in seen) == want and all(_ready(formation, n) for n in seen)

    return _wait(formation, settled, "settle", timeout_s)


def _port_or_fail(port: int) -> None:
    if not cluster._port_free(port):
        raise ClusterError(f"port {port} on 127.0.0.1 is in use; choose other ports with GRIDMAP_FAILOVER_PORT=<port>")


def down(base: Path) -> bool:
    """Stop every node, standbys first, then the monitor. False when no formation runs here."""
    formation = load(base)
    if formation is None:
        return False
    stopped = False
    order = formation.names[::-1]
    try:
        current = primary(formation)
        if current is not None:
            # The primary last: a standby stopped after it would be asked to take over.
            order = [n for n in order if n != current] + [current]
    except ClusterError:
        pass
    for name in [*order, MONITOR]:
        stopped = stop_node(formation, name) or stopped
    return stopped


def url(formation: Formation, database: str, *, read_only: bool = False) -> str:
    """The SQLAlchemy URL naming every data node: libpq tries them in turn and keeps the first
    that accepts writes (``read_only``: prefers a standby, for reads that tolerate lag)."""
    hosts = ",".join("127.0.0.1" for _ in formation.node_ports)
    ports = ",".join(str(p) for p in formation.node_ports)
    attrs = "prefer-standby" if read_only else "read-write"
    # connect_timeout: a node that is down but not refusing (a dead machine) is given up quickly.
    return (
        f"postgresql+psycopg://postgres@/{database}?host={hosts}&port={ports}"
        f"&target_session_attrs={attrs}&connect_timeout=3"
    )


def status(base: Path) -> str:
    formation = load(base)
    if formation is None:
        return f"no formation in {base}"
    try:
        rows = nodes(formation)
    except ClusterError:
        return f"formation in {base}: the monitor (port {formation.monitor_port}) is not running"
    parts = [f"{n['name']}:{n['port']} {n['reported']}" + ("" if n["healthy"] else " (unhealthy)") for n in rows]
    return f"formation in {base}, monitor port {formation.monitor_port}: " + ", ".join(parts)


def base_dir(settings: Settings) -> Path:
    """``var/pgaf``; when the server's OS user cannot reach the checkout, a folder under
    /var/lib/gridmap that ``var/pgaf`` links to (as gis.core.cluster does for ``var/pg``)."""
    root = settings.var_dir / "pgaf"
    if root.is_symlink() or root.exists():
        return root.resolve()
    root.parent.mkdir(parents=True, exist_ok=True)
    if cluster._is_root() and not cluster._owner_can_reach(root.parent):
        target = Path("/var/lib/gridmap") / (hashlib.sha1(str(root).encode()).hexdigest()[:12] + "-pgaf")
        target.mkdir(parents=True, exist_ok=True)
        root.symlink_to(target, target_is_directory=True)
        return target
    return root


def configured(settings: Settings) -> Formation | None:
    """The formation of this checkout when ``gridmap db up --replicas`` made one (and no URL is set)."""
    if settings.database_url is not None:
        return None
    root = settings.var_dir / "pgaf"
    return load(root.resolve()) if root.exists() else None


def up(settings: Settings, replicas: int | None) -> Formation:
    return create(base_dir(settings), settings.failover_port, replicas, detect_ms=settings.failover_detect_ms)
