"""Photo uploads (issue 17, item 5): a 5 MB photo stored end to end with its thumbnail in <= 1 s,
and the server's memory not growing with the file's size.

    .venv/bin/python bench/bench_attachments.py [--rounds 5] [--keep-files]

A throwaway database (``gridmap_bench_attachments`` on the configured server) gets the mini
county and one incident; uvicorn serves it (one worker, rate limit off) with a throwaway
attachment store. The script makes two 12-megapixel JPEGs with EXIF GPS: a 5 MB one (a phone
photo) and a 50 MB one (the same pixel count, noisier, so only the file size differs), and posts
each ``--rounds`` times as a raw body (every round with a different EXIF time, so nothing is
deduplicated and each upload is decoded, stripped and thumbnailed afresh).

It prints, per file size: the upload latency (request sent to 201 received: streamed to disk,
hashed, type-checked, EXIF read, decoded at reduced scale, stripped copy and thumbnail stored, row
inserted), the thumbnail's GET latency, and the peak resident memory of the uvicorn process
during the uploads over its level before them (sampled every 5 ms from /proc).

Peers in the same run, on the same machine: a plain small POST (``POST /incidents``, JSON) to the
same server, and the naive way of taking a file, reading it whole into memory and writing it out
again, in this process, whose memory grows by the file's size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import sqlalchemy as sa
from PIL import Image
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from boundaries.generations import publish_layers  # noqa: E402
from boundaries.sample import build_mini_county  # noqa: E402
from gis.core import db  # noqa: E402
from gis.core.settings import get_settings  # noqa: E402
from gis.people.keys import create_key  # noqa: E402
from tests.gis.attachment_samples import exif_with  # noqa: E402

THROWAWAY = "gridmap_bench_attachments"
POINT = (120.905, 30.832)  # inside the mini county
SIZE = (4000, 3000)  # 12 MP, a phone camera's
WHEN = "2026:11:30 09:15:00"


def _database() -> str:
    base = make_url(db.database_url(get_settings()))
    url = base.set(database=THROWAWAY).render_as_string(hide_password=False)
    _drop(url)
    db.ensure_database(url)
    db.migrate(url)
    return url


def _drop(url: str) -> None:
    admin = db.make_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{THROWAWAY}" WITH (FORCE)'))
    admin.dispose()


def _seed(url: str) -> str:
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    with engine.begin() as conn:
        at = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        publish_layers(conn, build_mini_county(), note="bench", author="bench", published_at=at)
        key = create_key(conn, "dispatcher", "bench-dispatcher")
    engine.dispose()
    return key


def _serve(url: str, store: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "GRIDMAP_DATABASE_URL": url,
        "GRIDMAP_RATE_LIMIT_PER_MINUTE": "0",
        "GRIDMAP_ATTACHMENTS_DIR": str(store),
        "GRIDMAP_ATTACHMENT_MAX_MB": "64",
    }
    cmd = [sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(port), "--workers", "1"]
    cmd += ["--no-access-log", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("the API did not come up")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakRss:
    """The highest resident memory of a process while the block runs (sampled every 5 ms)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mb(self.pid))
            time.sleep(0.005)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def photo(noise: float, quality: int) -> bytes:
    """A 12 MP JPEG with EXIF GPS at POINT; ``noise`` sets how much detail (and so the size)."""
    im = Image.merge("RGB", [Image.effect_noise(SIZE, noise) for _ in range(3)])
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality, subsampling=0, exif=exif_with(*POINT, when=WHEN))
    return buf.getvalue()


def variant(data: bytes, n: int) -> bytes:
    """The same photo with another EXIF time (same length): other content, so no deduplication."""
    return data.replace(WHEN.encode(), f"2026:11:30 09:{n // 60:02d}:{n % 60:02d}".encode(), 1)


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def _line(name: str, ms: list[float]) -> str:
    return f"{name:<34} p50 {statistics.median(ms):8.1f} ms   max {max(ms):8.1f} ms   (n={len(ms)})"


def naive_copy_mb(data_path: Path, out_dir: Path) -> tuple[float, float]:
    """The naive way, in this process: read the whole file into memory, write it out. (ms, MB the
    resident memory grew while the bytes were held.)"""
    before = _rss_mb(os.getpid())
    t0 = time.perf_counter()
    body = data_path.read_bytes()
    (out_dir / "naive-copy").write_bytes(body)
    ms = (time.perf_counter() - t0) * 1000
    grew = _rss_mb(os.getpid()) - before
    del body
    return ms, grew


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-attachments-"))
    url = _database()
    key = _seed(url)
    proc, base = _serve(url, work / "store")
    headers = {"X-API-Key": key}
    try:
        client = httpx.Client(base_url=base, headers=headers, timeout=120)
        incident = client.post(
            "/incidents", json={"category": "dispute", "source": "grid_patrol", "lon": POINT[0], "lat": POINT[1]}
        ).json()["id"]
        photos = {"5 MB": photo(5.5, 92), "50 MB": photo(100, 100)}
        uploaded = f"/incidents/{incident}/attachments"
        # Warm-up: the first upload imports and opens what later ones reuse.
        client.post(uploaded, content=variant(photos["5 MB"], 3599), headers={"Content-Type": "image/jpeg"})
        idle = _rss_mb(proc.pid)
        print(f"uvicorn worker RSS before uploads: {idle:.1f} MB")
        n = 0
        for name, data in photos.items():
            upload_ms, thumb_ms = [], []
            with PeakRss(proc.pid) as rss:
                for _ in range(args.rounds):
                    n += 1
                    body = variant(data, n)
                    t0 = time.perf_counter()
                    r = client.post(uploaded, content=body, headers={"Content-Type": "image/jpeg"})
                    upload_ms.append((time.perf_counter() - t0) * 1000)
                    assert r.status_code == 201, r.text
                    t0 = time.perf_counter()
                    thumb = client.get(r.json()["thumbnail_url"])
                    thumb_ms.append((time.perf_counter() - t0) * 1000)
                    assert thumb.status_code == 200
            print(f"{name} photo ({len(data) / 1e6:.1f} MB, {SIZE[0]}x{SIZE[1]}):")
            print("  " + _line("upload (stored + thumbnail)", upload_ms))
            print("  " + _line("GET thumbnail", thumb_ms))
            print(f"  worker peak RSS during uploads: {rss.peak:.1f} MB ({rss.peak - idle:+.1f} MB over idle)")
        small_ms = []
        for i in range(20):
            t0 = time.perf_counter()
            r = client.post(
                "/incidents",
                json={"category": "dispute", "source": "grid_patrol", "lon": POINT[0] + i * 1e-5, "lat": POINT[1]},
            )
            small_ms.append((time.perf_counter() - t0) * 1000)
        print("peer: " + _line("POST /incidents (small JSON)", small_ms))
        for name, data in photos.items():
            path = work / f"{name.replace(' ', '')}.jpg"
            path.write_bytes(data)
            ms, grew = naive_copy_mb(path, work)
            print(f"peer: naive read-whole-and-write of the {name} file: {ms:.1f} ms, this process grew {grew:+.1f} MB")
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        _drop(url)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
