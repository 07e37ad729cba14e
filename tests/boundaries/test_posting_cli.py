"""``gridmap boundaries postings|decide|publish`` as a planner runs them, on a database of their own
(the commands commit): a refused publish prints the reason, a decided one moves the postings."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from gis.core import db

ROOT = Path(__file__).resolve().parents[2]
G1, G3 = "330421001001001", "330421001001003"


def _gridmap(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GRIDMAP_DATABASE_URL": url}
    cmd = [sys.executable, "-c", "from api.cli import main; main()", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def test_refused_publish_names_the_grid_and_role(database_url: str) -> None:
    from boundaries import edits
    from boundaries.drafts import create_draft
    from boundaries.generations import publish_layers
    from boundaries.sample import build_mini_county
    from gis.people import write

    with db.scratch_database(database_url, "plancli") as url:
        engine = db.make_engine(url)
        with engine.begin() as conn:
            published = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
            publish_layers(conn, build_mini_county(), note="mini", author="tests", published_at=published)
            ids = {}
            for name, role in (("张一长", "grid_leader"), ("李一员", "grid_worker"), ("刘二员", "grid_worker")):
                person = write.create_person(conn, "hr", name=name)
                data = {"role": role, "area_code": G1, "starts_on": "2024-01-01"}
                ids[name] = write.add_posting(conn, "hr", person["id"], data)["id"]
            newcomer = write.create_person(conn, "hr", name="赵新长")["id"]
            d = create_draft(conn, "grid", "330421001", author="tests")
            edits.split_polygon(conn, d, [[120.899, 30.835], [120.911, 30.835]], actor="t", code=G1, new_code=G3)

        refused = _gridmap(url, "boundaries", "publish", str(d), "--note", "split")
        assert refused.returncode == 1
        assert f"grid {G3} would have no grid_leader" in refused.stderr.replace("\n", " ")
        shown = _gridmap(url, "boundaries", "postings", str(d))
        assert shown.returncode == 0 and f"{G1} -> " in shown.stdout and G3 in shown.stdout

        moved = _gridmap(url, "boundaries", "decide", str(d), "move", "--posting", str(ids["刘二员"]), "--to", G3)
        assert moved.returncode == 0, moved.stderr
        args = ("boundaries", "decide", str(d), "add", "--person", str(newcomer), "--role", "网格长", "--to", G3)
        assert _gridmap(url, *args).returncode == 0
        done = _gridmap(url, "boundaries", "publish", str(d), "--note", "split")
        assert done.returncode == 0, done.stderr
        with engine.connect() as conn:
            on_g3 = conn.execute(
                sa.text("SELECT role, person_id FROM postings WHERE area_code = :c AND ends_on IS NULL ORDER BY role"),
                {"c": G3},
            ).all()
            actors = set(conn.execute(sa.text("SELECT actor FROM audit_log WHERE action = 'posting.create'")).scalars())
        engine.dispose()
        assert [r.role for r in on_g3] == ["grid_leader", "grid_worker"] and on_g3[0].person_id == newcomer
        assert any(a.startswith("cli:") for a in actors)
