"""Search and the web app on large catalogues: 10,000 / 50,000 / 100,000 rows.

Catalogues come from bench/scale_catalogue.py (the corpus run once through the job, its rows
repeated under new ids with the same texts: embeddings cached, nothing embedded again). Per size:

- `pipeline search "<query>"` as a fresh process (cold): wall time and peak memory, with the
  stored index missing (it is built and saved) and present (it is loaded);
- `pipeline serve` (waitress, the real server on 127.0.0.1): seconds until it answers, then
  p50/p95 latency and error responses of /zoeken (a fixed list of queries, filters on some),
  /review/ (a logged-in reviewer) and /initiatief/<id> under 8 concurrent clients, a bounded
  number of requests each, and the server's peak memory;
- the same for the code of `--baseline` (default: the commit before this work, exported with
  `git archive`) in the same run, on the sizes in `--baseline-rows`.

    .venv/bin/python bench/bench_scale.py [--rows 10000 50000 100000] [--requests 160]

Writes bench/out/bench_scale.json and bench/out/bench_scale.md.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale_catalogue import corpus_catalogue, scaled_catalogue  # noqa: E402

from pipeline.app.initiative_views import id_to_segment  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
BASELINE_COMMIT = "aa62a0d"
PASSWORD = "bench-wachtwoord-lang-genoeg"
CLIENTS = 8
QUERIES = ["eenzame ouderen bellen", "maaltijden voor daklozen", "schuldhulp jongeren",
           "taalcafé voor nieuwkomers", "laptops voor leerlingen", "mantelzorgers ondersteunen",
           "boodschappen doen voor kwetsbare mensen", "sport en bewegen kinderen"]
SEARCH_QUERY = "eenzame ouderen bellen"
UNSEEN = ["thuis", "wijk", "samen", "gratis", "digitaal", "hulp", "buurt", "school"]


def run_measured(args: list[str], cwd: Path) -> tuple[float, float, int]:
    """(seconds, peak MB, exit code) of one process."""
    start = time.perf_counter()
    process = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    return seconds, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def cli_search(code: Path, config: Path, db: Path) -> dict:
    index = Path(f"{db}.search-index.joblib")
    index.unlink(missing_ok=True)
    args = [sys.executable, "-m", "pipeline", "--config", str(config), "search", SEARCH_QUERY,
            "--db", str(db), "--limit", "10"]
    out = {}
    for name in ("index_built", "index_loaded"):
        seconds, mb, code_ = run_measured(args, code)
        out[name] = {"seconds": round(seconds, 2), "peak_mb": round(mb), "exit": code_}
    return out


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def login(session: requests.Session, base: str) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', session.get(f"{base}/login").text).group(1)
    response = session.post(f"{base}/login", data={"name": "bench", "password": PASSWORD,
                                                    "csrf_token": token}, allow_redirects=False)
    assert response.status_code == 302, response.status_code


def load(base: str, paths: list[str], per_client: int, cookies=None) -> dict:
    """`CLIENTS` threads, each `per_client` GETs cycling through `paths`: latency and errors."""
    times: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()

    def client(k: int):
        session = requests.Session()
        if cookies is not None:  # one reviewer's session (logins are rate-limited per name)
            session.cookies.update(cookies)
        for i in range(per_client):
            path = paths[(k * per_client + i) % len(paths)]
            start = time.perf_counter()
            try:
                status = session.get(base + path, timeout=120).status_code
            except requests.RequestException:
                status = -1
            with lock:
                times.append(time.perf_counter() - start)
                if status != 200:
                    errors.append(status)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    times.sort()
    pick = lambda q: round(1000 * times[min(len(times) - 1, int(q * len(times)))])  # noqa: E731
    return {"requests": len(times), "p50_ms": pick(0.50), "p95_ms": pick(0.95),
            "max_ms": round(1000 * times[-1]), "errors": len(errors),
            "error_codes": sorted(set(errors))}


def serve(code: Path, config: Path, db: Path, ids: list[str], per_client: int) -> dict:
    subprocess.run([sys.executable, "-m", "pipeline", "--config", str(config), "reviewer", "add",
                    "bench", "--db", str(db), "--password-stdin"], cwd=code,
                   input=f"{PASSWORD}\n{PASSWORD}\n", text=True, capture_output=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "pipeline", "--config", str(config), "serve",
                                "--db", str(db), "--port", str(port)], cwd=code,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out: dict = {}
    try:
        while True:
            try:
                requests.get(f"{base}/login", timeout=5)
                break
            except requests.RequestException:
                if process.poll() is not None:
                    return {"error": "server did not start"}
                time.sleep(0.2)
        out["listening_s"] = round(time.perf_counter() - start, 1)
        first = time.perf_counter()
        status = requests.get(f"{base}/zoeken?q=eerste+zoekvraag", timeout=600).status_code
        out["first_zoeken_s"] = round(time.perf_counter() - first, 2)
        out["first_zoeken_status"] = status
        zoeken = [f"/zoeken?q={q.replace(' ', '+')}" for q in QUERIES]
        zoeken += ["/zoeken?q=ouderen&thema=eenzaamheid", "/zoeken?thema=schulden", "/zoeken?q=ouderen&pagina=3"]
        out["zoeken"] = load(base, zoeken, per_client)
        # Queries no one asked before (no cached query vector or ranking), one at a time.
        unique = []
        for i, q in enumerate(QUERIES):
            t = time.perf_counter()
            requests.get(f"{base}/zoeken?q={q.replace(' ', '+')}+{UNSEEN[i]}", timeout=120)
            unique.append(time.perf_counter() - t)
        out["zoeken_new_query_ms"] = round(1000 * sorted(unique)[len(unique) // 2])
        reviewer = requests.Session()
        login(reviewer, base)
        out["review"] = load(base, ["/review/"], max(2, per_client // 4), cookies=reviewer.cookies)
        step = max(1, len(ids) // 97)
        out["item"] = load(base, [f"/initiatief/{id_to_segment(i)}" for i in ids[::step]], per_client)
        out["server_peak_mb"] = round(peak_mb(process.pid))
    finally:
        process.terminate()
        process.wait(timeout=60)
    return out


def baseline_code(work: Path, commit: str) -> Path:
    """The code of `commit`, exported beside the catalogues, sharing our embedding cache."""
    target = work / f"code-{commit}"
    if not target.exists():
        target.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", commit], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
        (target / ".cache").symlink_to(ROOT / ".cache")
    return target


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10000])
    parser.add_argument("--baseline-rows", type=int, nargs="*", default=[10000])
    parser.add_argument("--baseline", default=BASELINE_COMMIT)
    parser.add_argument("--requests", type=int, default=160, help="requests per page kind")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_scale"))
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    config = ROOT / "configs" / "pipeline.toml"
    base = corpus_catalogue(args.work / "corpus.sqlite", config)
    per_client = max(1, args.requests // CLIENTS)
    results = {"clients": CLIENTS, "requests_per_page_kind": per_client * CLIENTS,
               "baseline": args.baseline, "sizes": {}}
    old = baseline_code(args.work, args.baseline) if args.baseline_rows else None
    for n in args.rows:
        db = args.work / f"{n}.sqlite"
        if not db.exists():
            print(f"building {n} rows: {scaled_catalogue(base, db, n):.0f} s", flush=True)
        ids = [f"{i}" for i in json.loads(subprocess.run(
            [sys.executable, "-c", "import json,sqlite3,sys; c=sqlite3.connect(sys.argv[1]);"
             "print(json.dumps([r[0] for r in c.execute('SELECT id FROM current_initiatives')]))", str(db)],
            capture_output=True, text=True, check=True).stdout)]
        size: dict = {}
        runs = [("new", ROOT, config)]
        if old is not None and n in args.baseline_rows:
            old_db = args.work / f"{n}-baseline.sqlite"
            shutil.copy(db, old_db)
            runs.append(("baseline", old, old / "configs" / "pipeline.toml"))
        for name, code, conf in runs:
            target = db if name == "new" else args.work / f"{n}-baseline.sqlite"
            size[name] = {"search_cli": cli_search(code, conf, target)}
            print(n, name, "search", size[name]["search_cli"], flush=True)
            size[name]["serve"] = serve(code, conf, target, ids, per_client)
            print(n, name, "serve", size[name]["serve"], flush=True)
        results["sizes"][n] = size
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "bench_scale.json").write_text(json.dumps(results, indent=2) + "\n")
    (OUT / "bench_scale.md").write_text(report(results))
    print(report(results))


def report(results: dict) -> str:
    lines = [f"# Scale benchmark ({results['clients']} clients, {results['requests_per_page_kind']} "
             "requests per page kind)", "",
             "| rows | code | search: index built s / MB | search: index loaded s / MB | serve ready s "
             "| first /zoeken s | /zoeken p50/p95 ms (err) | /review/ p50/p95 ms (err) "
             "| item p50/p95 ms (err) | server MB | new query ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for n, size in results["sizes"].items():
        for name, r in size.items():
            c, s = r["search_cli"], r["serve"]
            if "error" in s:
                lines.append(f"| {n} | {name} | {s['error']} |")
                continue
            cell = lambda k: f"{s[k]['p50_ms']}/{s[k]['p95_ms']} ({s[k]['errors']})"  # noqa: E731
            lines.append(
                f"| {n} | {name} | {c['index_built']['seconds']} / {c['index_built']['peak_mb']} "
                f"| {c['index_loaded']['seconds']} / {c['index_loaded']['peak_mb']} | {s['listening_s']} "
                f"| {s['first_zoeken_s']} | {cell('zoeken')} | {cell('review')} | {cell('item')} "
                f"| {s['server_peak_mb']} | {s.get('zoeken_new_query_ms', '')} |")
    lines += ["", f"baseline = the code of commit {results.get('baseline', '?')}, in the same run. "
              "/zoeken cycles through 11 URLs (8 queries, 2 with filters, one page 3); \"new query\" "
              "is the median of 8 queries not asked before, sent one at a time after the load. "
              "/review/ errors are the Dutch 503 \"De wachtrij wordt geladen\" answered while the "
              "queue is still read at start."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
