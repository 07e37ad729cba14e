"""``gridmap demo``: the README's main job: database, Jiashan demo data (loaded once, then topped up
to now on every start so that the maps' default window shows the latest week), API and maps, and
the job worker beside them (``gridmap worker``: deadlines, escalation), and the simulator that
plays the county's day live (``gridmap simulate``; ``--no-simulate`` leaves it out)."""

from __future__ import annotations

import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from gis.core.settings import Settings

# The database modules are imported inside the functions: see api/cli/__init__.py.

out = Console(soft_wrap=True)


def load_demo_if_empty(settings: Settings, incidents: int | None = None) -> bool:
    """Load the Jiashan demo (its year ending now) when no boundary generation is published; True
    when it was loaded. ``incidents`` scales the year down (tests, quick looks)."""
    from api.cli.seed import run_seed
    from demo.jiashan.load import has_published_generation
    from gis.core import db

    engine = db.engine_from_settings(settings)
    try:
        with engine.connect() as conn:
            if has_published_generation(conn):
                return False
    finally:
        engine.dispose()
    out.print("the database has no boundaries yet: loading the Jiashan demo (about a minute)")
    run_seed(42, incidents, force=False)
    write_demo_keys(settings)
    return True


def write_demo_keys(settings: Settings) -> None:
    """One API key per role, printed and kept in var/demo-keys.txt (mode 0600): keys are shown only once."""
    from gis.core import audit, db
    from gis.core.vocab import ROLES
    from gis.people import keys

    path = settings.var_dir / "demo-keys.txt"
    engine = db.engine_from_settings(settings)
    try:
        with db.transaction(engine) as session:
            created = {role: keys.create_key(session, role, f"demo-{role}") for role in ROLES}
            audit.record(session, "demo", "key.create", "demo keys", roles=list(ROLES))
    finally:
        engine.dispose()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text("".join(f"{role}\t{key}\n" for role, key in created.items()))
    out.print(f"API keys for each role (send as X-API-Key), also in {path}:", highlight=False)
    for role, key in created.items():
        out.print(f"  {role:<11} {key}", highlight=False)


def demo_keys(settings: Settings) -> dict[str, str]:
    """The demo's keys by role, as var/demo-keys.txt holds them (empty when there is no file)."""
    path = settings.var_dir / "demo-keys.txt"
    if not path.exists():
        return {}
    pairs = (line.split("\t", 1) for line in path.read_text().splitlines() if "\t" in line)
    return {role.strip(): key.strip() for role, key in pairs}


def command_centre_url(settings: Settings) -> str:
    """The command-centre page, ready to open: the viewer's key (least privilege that shows the maps)."""
    from urllib.parse import urlencode

    base = f"http://{settings.host}:{settings.port}/maps/command-center"
    key = demo_keys(settings).get("viewer")
    return f"{base}?{urlencode({'key': key})}" if key else base


def demo_keys_work(settings: Settings) -> bool:
    """Whether var/demo-keys.txt exists and every key in it is still valid in this database."""
    from gis.core import db
    from gis.people import keys

    path = settings.var_dir / "demo-keys.txt"
    if not path.exists():
        return False
    presented = [line.split("\t", 1)[1].strip() for line in path.read_text().splitlines() if "\t" in line]
    engine = db.engine_from_settings(settings)
    try:
        with engine.connect() as conn:
            return bool(presented) and all(keys.verify_key(conn, key) is not None for key in presented)
    finally:
        engine.dispose()


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        serve: bool = typer.Option(True, help="serve the API and maps after loading"),
        workers: int = typer.Option(2, min=1, help="uvicorn worker processes"),
        incidents: int | None = typer.Option(
            None, min=0, help="incidents a year when the demo is first loaded (default: 282,347)"
        ),
        simulate: bool = typer.Option(True, help="play the county's day live (reports, dispatch, handling)"),
        speed: float = typer.Option(60.0, min=1.0, max=3600.0, help="the simulator's simulated seconds per second"),
    ) -> None:
        """Bring up the database, load the Jiashan demo when the database is empty or top it up to
        now, and serve."""
        import uvicorn

        from api.cli.seed import run_topup
        from gis.core import db
        from gis.core.settings import get_settings

        settings = get_settings()
        db.prepare(settings)
        keys_file = settings.var_dir / "demo-keys.txt"
        if not load_demo_if_empty(settings, incidents):
            run_topup()  # the year ends now, whenever the demo was loaded
            if not demo_keys_work(settings):  # data loaded some other way (gridmap seed), or keys revoked
                write_demo_keys(settings)
        base = f"http://{settings.host}:{settings.port}"
        out.print(f"gridmap is starting on {base}", highlight=False)
        for path, what in (("/health", "health"), ("/docs", "API documentation")):
            out.print(f"  {what:<22} {base}{path}", highlight=False)
        out.print(f"  {'command centre':<22} {command_centre_url(settings)}", highlight=False)
        out.print(f"  {'demo API keys':<22} {keys_file}", highlight=False)
        if serve:
            # uvicorn re-raises the SIGTERM it stopped on once it is done: with the default handler the
            # process died there and left the worker and the simulator running; this one unwinds
            # through the ``finally`` below, which stops them.
            signal.signal(signal.SIGTERM, _exit_on_sigterm)
            job_worker = start_job_worker()
            simulator = start_simulator(speed) if simulate else None
            if simulator is None:
                out.print(f"  {'simulator':<22} off (--no-simulate)", highlight=False)
            try:
                uvicorn.run(
                    "api.main:app",
                    host=settings.host,
                    port=settings.port,
                    workers=workers,
                    log_level="info",
                    access_log=False,
                )
            finally:
                if simulator is not None:
                    stop_job_worker(simulator)
                stop_job_worker(job_worker)


def start_job_worker() -> subprocess.Popen[bytes]:
    """``gridmap worker`` beside the API: deadlines and escalation run as jobs (gis.work)."""
    cmd = [sys.executable, "-c", "from api.cli import main; main()", "worker"]
    proc = subprocess.Popen(cmd)
    out.print(f"  {'job worker':<22} running (pid {proc.pid}): deadlines, escalation", highlight=False)
    return proc


def _exit_on_sigterm(signum: int, frame: object) -> None:
    sys.exit(128 + signum)


def start_simulator(speed: float) -> subprocess.Popen[bytes]:
    """``gridmap simulate`` beside the API: the county's day at ``speed``, through intake and dispatch,
    so that the command centre's live layer and ticker move (demo.simulator)."""
    cmd = [sys.executable, "-c", "from api.cli import main; main()", "simulate", "--speed", str(speed)]
    proc = subprocess.Popen(cmd)
    what = f"the county's day at {speed:g}x: reports, dispatch, handling (--no-simulate to switch off)"
    out.print(f"  {'simulator':<22} running (pid {proc.pid}): {what}", highlight=False)
    return proc


def stop_job_worker(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a graceful stop: running jobs finish), then SIGKILL if it hangs; an unfinished job
    is retried by the next worker."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
