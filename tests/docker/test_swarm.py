"""The Swarm stack end to end: replicas, a promote reaching all, a rolling update, a lost replica.

Runs deploy/swarm/stack.yml as the README deploys it, on a single-node swarm this test creates and
always dismantles (stack, volume, secret, swarm, the loopback docker_gwbridge), so it never meets
a swarm of the user's: it refuses to start on an engine that is already in one. Load comes from
`hey` against the load balancer's loopback port, bounded in rate and time.
"""

import collections
import json
import os
import re
import secrets
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from service.canary import bucket
from tests.docker.engine import REPO, buildkit_path, prepare_engine, run
from tests.docker.test_compose import png, real_test_images
from tests.e2e.server import free_port

pytestmark = [pytest.mark.swarm, pytest.mark.timeout(1800)]

STACK_FILE = REPO / "deploy" / "swarm" / "stack.yml"
LB_DOCKERFILE = REPO / "deploy" / "swarm" / "haproxy.Dockerfile"
MODEL = "fashion-mnist"
# The image ships the repo's registry: production is whatever the repo promoted last.
SHIPPED_ALIASES = REPO / "models" / MODEL / "aliases.json"
SHIPPED_PRODUCTION = json.loads(SHIPPED_ALIASES.read_text())["production"]
REPLICAS = 2
SECRET = "fashion_admin_token"  # the external secret stack.yml names
GWBRIDGE = "docker_gwbridge"
# Every published port of the swarm binds to loopback only: Swarm itself cannot bind one address.
GWBRIDGE_OPTIONS = {
    "com.docker.network.bridge.name": GWBRIDGE,
    "com.docker.network.bridge.enable_icc": "false",
    "com.docker.network.bridge.enable_ip_masquerade": "true",
    "com.docker.network.bridge.host_binding_ipv4": "127.0.0.1",
}
SERVING_TIMEOUT = 180  # seconds until every replica is healthy and behind the load balancer
PROMOTE_TIMEOUT = 5  # the bound: a promote reaches every replica within 5 s
SETTLED = 8  # answers in a row from the new version per replica: all its workers switched
UPDATE_TIMEOUT = 180
# Bounded load: 4 clients at 20 requests/s each, for at most LOAD_LIMIT seconds.
LOAD_CLIENTS, LOAD_RATE, LOAD_LIMIT = 4, 20, 150
MIN_REQUESTS = 300  # below this a failure ratio says little
MAX_FAILED_WHEN_KILLED = 0.005
# A 10 % canary must serve 10 ± 2 % of answers. Each fresh key falls in the canary with
# p = 0.1 (a uniform hash), so the share of n answers has a standard deviation of
# sqrt(0.1 * 0.9 / n): 0.47 points at n = 4,000, and 2 points is 4.2 of them. A correct canary
# then fails the check about once in 40,000 runs (two-sided normal tail), while a real
# miss of 2 points or more is caught half the time or more, 3 points or more almost always.
CANARY_WEIGHT, CANARY_TOLERANCE, CANARY_REQUESTS = 10, 2.0, 4000
STICKY_KEYS, STICKY_REPEATS = 200, 4  # each key asked 4 times: most meet both replicas
CANARY_CLIENTS = 8  # concurrent clients: load on both replicas while counting
# A shadow under load: each of SHADOW_IMAGES real test images asked SHADOW_REPEATS times by
# SHADOW_CLIENTS clients, two per replica, so the workers' loops have idle gaps to compare in
# (a saturated worker drops its copies by design; bench/swarm.py measures that load).
SHADOW_IMAGES, SHADOW_REPEATS, SHADOW_CLIENTS = 50, 8, 4
COMPARED = "fashion_shadow_predictions_total"


@dataclass
class LoadReport:
    """What `hey` counted: answers by status, and requests that got no answer at all."""

    statuses: dict[int, int]
    errors: int
    text: str

    @property
    def total(self) -> int:
        return sum(self.statuses.values()) + self.errors

    @property
    def failed(self) -> int:
        return self.total - self.statuses.get(200, 0)


class Load:
    """`hey` posting one real image to the load balancer until stopped (or LOAD_LIMIT passes)."""

    def __init__(self, url: str, image: Path) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [
                "hey",
                *("-z", f"{LOAD_LIMIT}s", "-c", str(LOAD_CLIENTS), "-q", str(LOAD_RATE)),
                *("-m", "POST", "-T", "image/png", "-D", str(image)),
                f"{url}/predict",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def stop(self) -> LoadReport:
        """Interrupt hey (it then prints its report) and read the counts; not before it has had
        the time to send MIN_REQUESTS at its rate (a fast replacement once left it at 272)."""
        least = self.started + MIN_REQUESTS / (LOAD_CLIENTS * LOAD_RATE) + 1
        time.sleep(max(0.0, least - time.monotonic()))
        self.process.send_signal(signal.SIGINT)
        text, _ = self.process.communicate(timeout=60)
        statuses = {
            int(code): int(count)
            for code, count in re.findall(r"\[(\d{3})\]\s+(\d+) responses", text)
        }
        errors = 0
        if "Error distribution:" in text:
            errors_part = text.split("Error distribution:", 1)[1]
            errors = sum(int(count) for count in re.findall(r"^\s*\[(\d+)\]", errors_part, re.M))
        return LoadReport(statuses, errors, text)


class Stack:
    """A single-node swarm running stack.yml under a name of its own, and ways to inspect it."""

    def __init__(self, work: Path, base_image: str) -> None:
        self.base_image = base_image
        self.name = f"fashion-swarm-{uuid.uuid4().hex[:8]}"
        self.token = secrets.token_urlsafe(32)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.tag = "swarm-1"
        self.env = {
            **os.environ,
            "PATH": buildkit_path(work / "bin"),
            "DOCKER_BUILDKIT": "1",
            "FASHION_SWARM_PORT": str(port),
            "FASHION_LB_IMAGE": os.environ.get("FASHION_LB_IMAGE", "local/haproxy:2.6"),
        }
        self.work = work
        self._sessions = threading.local()  # one HTTP session per client thread

    def docker(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        return run(["docker", *args], {**self.env, "FASHION_TAG": self.tag}, timeout, check)

    def build(self) -> None:
        """The serve and train images under this run's tag, and the load balancer's stand-in."""
        for target, image in (("serve", "fashion-serve"), ("train", "fashion-serve-train")):
            self.docker(
                *("build", "--build-arg", f"BASE_IMAGE={self.base_image}", "--target", target),
                *("--tag", f"{image}:{self.tag}", "."),
                timeout=1200,
            )
        if "FASHION_LB_IMAGE" not in os.environ:
            self.docker(
                *("build", "--build-arg", f"BASE_IMAGE={self.base_image}"),
                *("-f", str(LB_DOCKERFILE), "--tag", self.env["FASHION_LB_IMAGE"]),
                str(LB_DOCKERFILE.parent),
                timeout=600,
            )

    def refuse_a_swarm_not_ours(self) -> None:
        """Stop before touching anything when the engine is already in a swarm."""
        state = self.docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()
        if state != "inactive":
            pytest.fail(f"this engine is already in a swarm ({state}): not touching it")

    def create_swarm(self) -> None:
        """docker_gwbridge bound to loopback, then a one-node swarm and the token as a secret."""
        # A bridge a previous swarm left behind would bind published ports to every address.
        self.docker("network", "rm", GWBRIDGE, check=False)
        options = [
            arg for key, value in GWBRIDGE_OPTIONS.items() for arg in ("--opt", f"{key}={value}")
        ]
        self.docker("network", "create", *options, GWBRIDGE)
        self.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        token_file = self.work / "token"
        token_file.write_text(self.token)
        self.docker("secret", "create", SECRET, str(token_file))
        token_file.unlink()

    def deploy(self, tag: str) -> None:
        """The README's `docker stack deploy`, with FASHION_TAG=tag."""
        self.tag = tag
        # No registry to ask for the images' digests: every task uses the engine's local image.
        self.docker(
            *("stack", "deploy", "--resolve-image", "never"),
            *("--compose-file", str(STACK_FILE), self.name),
        )

    def service(self, name: str) -> str:
        return f"{self.name}_{name}"

    def healthy_containers(self) -> set[str]:
        """The api's containers Docker reports healthy."""
        output = self.docker(
            *("ps", "--quiet", "--no-trunc", "--filter", "health=healthy"),
            *("--filter", f"label=com.docker.swarm.service.name={self.service('api')}"),
        )
        return set(output.split())

    def served_by(self, rounds: int = 4 * REPLICAS) -> set[str]:
        """The replicas (load balancer slots) that answered a few /readyz requests with 200."""
        slots = set()
        for _ in range(rounds):
            try:
                response = requests.get(f"{self.url}/readyz", timeout=5)
            except requests.RequestException:
                continue
            if response.status_code == 200:
                slots.add(response.headers["X-Served-By"])
        return slots

    def production(self) -> int:
        """The version the production alias names now."""
        detail = requests.get(f"{self.url}/models/{MODEL}", timeout=30).json()
        return int(detail["aliases"]["production"])

    def predict(self, body: bytes, **headers: str) -> requests.Response:
        """POST a PNG to /predict through the load balancer (this thread's session); a 200."""
        if not hasattr(self._sessions, "http"):
            self._sessions.http = requests.Session()
        response = self._sessions.http.post(
            f"{self.url}/predict",
            data=body,
            headers={"Content-Type": "image/png", **headers},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response

    def per_replica(self, metric: str, replicas: int = REPLICAS, **labels: str) -> dict[str, float]:
        """A metric on each replica (its workers summed by its /metrics), over the samples with
        these labels: /metrics through the load balancer until every replica has answered."""
        found: dict[str, float] = {}
        deadline = time.monotonic() + 30
        while len(found) < replicas:
            assert time.monotonic() < deadline, f"/metrics only from {sorted(found)}"
            response = requests.get(f"{self.url}/metrics", timeout=10)
            assert response.status_code == 200, response.text
            found[response.headers["X-Served-By"]] = sum(
                sample.value
                for family in text_string_to_metric_families(response.text)
                for sample in family.samples
                if sample.name == metric and labels.items() <= sample.labels.items()
            )
        return found

    def wait_serving(self, replaced: str | None = None, replicas: int = REPLICAS) -> set[str]:
        """Wait for `replicas` healthy containers (not `replaced`) all answering through the LB."""
        deadline = time.monotonic() + SERVING_TIMEOUT
        while time.monotonic() < deadline:
            containers = self.healthy_containers()
            if (
                len(containers) == replicas
                and replaced not in containers
                and len(self.served_by(4 * replicas)) == replicas
            ):
                return containers
            time.sleep(1)
        pytest.fail(
            f"not {replicas} replicas serving after {SERVING_TIMEOUT} s:\n"
            + self.docker("service", "ps", "--no-trunc", self.service("api"))
            + self.docker("service", "logs", "--raw", self.service("lb"), check=False)[-3000:]
        )

    def train(self, args: str) -> str:
        """Run the one-off train service once, as the README does; its log."""
        service = self.service("train")
        self.docker("service", "update", "--detach", "--replicas", "1", "--args", args, service)
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            states = self.docker("service", "ps", "--format", "{{.CurrentState}}", service)
            if states.startswith("Complete"):
                return self.docker("service", "logs", "--raw", service)
            assert not states.startswith(("Failed", "Rejected")), self.docker(
                "service", "logs", "--raw", service, check=False
            )
            time.sleep(1)
        pytest.fail(f"training did not complete:\n{self.docker('service', 'logs', service)}")

    def update_state(self) -> str:
        return self.docker(
            "service",
            "inspect",
            "--format",
            "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}",
            self.service("api"),
        ).strip()

    def dismantle(self) -> None:
        """Stack, volume, secret, swarm and docker_gwbridge gone, whatever state the run is in."""
        self.docker("stack", "rm", self.name, check=False)
        label = f"label=com.docker.stack.namespace={self.name}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            left = self.docker("ps", "-aq", "--filter", label, check=False)
            left += self.docker("network", "ls", "-q", "--filter", label, check=False)
            if not left.strip():
                break
            time.sleep(1)
        self.docker("swarm", "leave", "--force", check=False)
        self.docker("volume", "rm", f"{self.name}_models", check=False)
        self.docker("network", "rm", GWBRIDGE, check=False)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Images built, the stack deployed with REPLICAS api replicas serving; always dismantled."""
    base_image = prepare_engine()
    stack = Stack(tmp_path_factory.mktemp("swarm"), base_image)
    started = time.monotonic()
    stack.build()
    print(f"images built in {time.monotonic() - started:.0f} s")
    stack.refuse_a_swarm_not_ours()  # outside the try: its swarm is never dismantled
    try:
        started = time.monotonic()
        stack.create_swarm()
        stack.deploy("swarm-1")
        stack.wait_serving()
        took = time.monotonic() - started
        print(f"swarm init + stack deploy to {REPLICAS} replicas serving: {took:.1f} s")
        yield stack
    finally:
        stack.dismantle()
        assert stack.docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip() == "inactive"
        assert f"{stack.name}_models" not in stack.docker("volume", "ls", "--quiet")


@pytest.fixture(scope="module")
def image_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real Fashion-MNIST test image as a PNG file, the load's request body."""
    images, _ = real_test_images()
    path = tmp_path_factory.mktemp("load") / "image.png"
    path.write_bytes(png(images[0]))
    return path


def test_replicas_answer_and_a_promote_reaches_every_replica_within_5_s(stack, image_file):
    body = image_file.read_bytes()

    def predict() -> tuple[str, int]:
        response = requests.post(
            f"{stack.url}/predict", data=body, headers={"Content-Type": "image/png"}, timeout=30
        )
        assert response.status_code == 200, response.text
        return response.headers["X-Served-By"], response.json()["model"]["version"]

    assert {slot for slot, _ in (predict() for _ in range(4 * REPLICAS))} == stack.served_by()
    assert {version for _, version in (predict() for _ in range(4 * REPLICAS))} == {
        SHIPPED_PRODUCTION
    }

    log = stack.train("--arch mlp --epochs 1 --train-limit 2000")
    registered = re.search(rf"registered {MODEL} version (\d+)", log)
    assert registered, log
    new_version = int(registered.group(1))

    url = f"{stack.url}/models/{MODEL}/aliases/production"
    wrong = requests.put(url, json={"version": new_version}, timeout=30)
    assert wrong.status_code == 401
    promoted = requests.put(
        url,
        json={"version": new_version},
        headers={"Authorization": f"Bearer {stack.token}"},
        timeout=30,
    )
    assert promoted.status_code == 200, promoted.text
    moved_at = time.monotonic()

    answers: dict[str, list[int]] = {}
    while len(answers) < REPLICAS or any(
        a[-SETTLED:] != [new_version] * SETTLED for a in answers.values()
    ):
        assert time.monotonic() - moved_at < PROMOTE_TIMEOUT, answers
        slot, version = predict()
        answers.setdefault(slot, []).append(version)
    took = time.monotonic() - moved_at
    print(f"every replica answers with version {new_version} {took:.2f} s after the promote")


def test_rolling_update_to_a_new_tag_under_load_fails_no_request(stack, image_file):
    before = stack.healthy_containers()
    for image in ("fashion-serve", "fashion-serve-train"):
        stack.docker("tag", f"{image}:swarm-1", f"{image}:swarm-2")
    load = Load(stack.url, image_file)
    try:
        started = time.monotonic()
        stack.deploy("swarm-2")
        deadline = started + UPDATE_TIMEOUT
        while (state := stack.update_state()) != "completed":
            assert state in ("", "updating"), f"update {state}"
            assert time.monotonic() < deadline, f"update still {state!r}"
            time.sleep(1)
        took = time.monotonic() - started
        after = stack.wait_serving()
    finally:
        report = load.stop()
    print(f"rolling update done in {took:.0f} s; {report.total} requests, {report.failed} failed")
    assert after.isdisjoint(before), "every replica should run in a new container"
    images = stack.docker(
        "service",
        "ps",
        "--filter",
        "desired-state=running",
        "--format",
        "{{.Image}}",
        stack.service("api"),
    )
    assert set(images.split()) == {"fashion-serve:swarm-2"}
    assert report.total >= MIN_REQUESTS, report.text
    assert report.failed == 0, report.text


def test_a_killed_replica_costs_almost_no_request_and_is_replaced(stack, image_file):
    victim = sorted(stack.healthy_containers())[0]
    load = Load(stack.url, image_file)
    try:
        # Some load on both replicas first, so the kill meets requests in flight.
        stack.served_by()
        started = time.monotonic()
        stack.docker("kill", victim)
        stack.wait_serving(replaced=victim)
        took = time.monotonic() - started
    finally:
        report = load.stop()
    ratio = report.failed / max(report.total, 1)
    print(
        f"replaced in {took:.0f} s; {report.total} requests, {report.failed} failed ({ratio:.2%})"
    )
    assert report.total >= MIN_REQUESTS, report.text
    assert ratio <= MAX_FAILED_WHEN_KILLED, report.text


def test_a_ten_percent_canary_serves_ten_percent_across_replicas_and_keys_stick(stack, image_file):
    """Under load from CANARY_CLIENTS clients: the candidate's share of CANARY_REQUESTS answers
    (each with a fresh X-Request-Key) is 10 ± 2 %; a key always gets one version, whichever
    replica answers it."""
    body = image_file.read_bytes()
    production = stack.production()
    candidate = 1 if production != 1 else 2
    admin = {"Authorization": f"Bearer {stack.token}"}
    url = f"{stack.url}/models/{MODEL}/aliases/production/canary"

    def served(key: str) -> tuple[str, int]:
        response = stack.predict(body, **{"X-Request-Key": key})
        return response.headers["X-Served-By"], response.json()["model"]["version"]

    moved = requests.put(url, json={"version": candidate, "weight": CANARY_WEIGHT},
                         headers=admin, timeout=60)  # fmt: skip
    assert moved.status_code == 200, moved.text
    try:
        # Keys the canary takes (the service's own hash): once every replica answers them with
        # the candidate SETTLED times in a row, all their workers follow canaries.json.
        canary_keys = [k for k in (f"probe-{i}" for i in range(1000))
                       if bucket(MODEL, "production", k) < CANARY_WEIGHT * 100]  # fmt: skip
        deadline = time.monotonic() + 60
        answers: dict[str, list[int]] = {}
        for key in canary_keys * 10:
            slot, version = served(key)
            answers.setdefault(slot, []).append(version)
            if len(answers) == REPLICAS and all(
                a[-SETTLED:] == [candidate] * SETTLED for a in answers.values()
            ):
                break
            assert time.monotonic() < deadline, answers
        else:
            pytest.fail(f"the replicas never all served the canary: {answers}")

        keys = [uuid.uuid4().hex for _ in range(CANARY_REQUESTS)]
        sticky = [uuid.uuid4().hex for _ in range(STICKY_KEYS)]
        started = time.monotonic()
        with ThreadPoolExecutor(CANARY_CLIENTS) as pool:
            counted = list(pool.map(served, keys))
            repeated = list(pool.map(served, sticky * STICKY_REPEATS))
        took = time.monotonic() - started
    finally:
        ended = requests.delete(url, headers=admin, timeout=60)
        assert ended.status_code == 200, ended.text

    versions = collections.Counter(version for _, version in counted)
    assert set(versions) == {production, candidate}, versions
    share = versions[candidate] / CANARY_REQUESTS * 100
    per_replica = collections.Counter(counted)
    print(
        f"{CANARY_REQUESTS + len(repeated)} requests in {took:.1f} s from {CANARY_CLIENTS}"
        f" clients; candidate v{candidate}: {share:.2f} % (by replica and version:"
        f" {dict(per_replica)})"
    )
    assert abs(share - CANARY_WEIGHT) <= CANARY_TOLERANCE, versions
    # Both replicas carried the load and each served both versions.
    assert {slot for slot, _ in per_replica} == stack.served_by()
    assert len(per_replica) == 2 * REPLICAS, per_replica
    seen: dict[str, set[int]] = {}
    replicas: dict[str, set[str]] = {}
    for key, (slot, version) in zip(sticky * STICKY_REPEATS, repeated, strict=True):
        seen.setdefault(key, set()).add(version)
        replicas.setdefault(key, set()).add(slot)
    assert all(len(versions) == 1 for versions in seen.values()), seen
    # The keys met both replicas, most of them: stickiness holds across replicas, not within one.
    assert sum(len(slots) == REPLICAS for slots in replicas.values()) >= STICKY_KEYS // 2
    assert {min(versions) for versions in seen.values()} == {production, candidate}


def test_a_shadow_never_changes_an_answer_and_both_replicas_compare(stack):
    """Real test images, answered twice without a shadow (by both replicas); then a shadow
    on production (admin API) and the same images under load from SHADOW_CLIENTS clients:
    every answer is byte for byte the one without it, each replica's workers compared copies
    (their own /metrics, told apart by the balancer's X-Served-By), and GET
    /models/<name>/shadows, read from the shared journal, holds exactly the comparisons the
    two replicas counted."""
    pictures, _ = real_test_images()
    bodies = [png(picture) for picture in pictures[:SHADOW_IMAGES]]
    production = stack.production()
    shadow = next(version for version in (2, 3) if version != production)
    admin = {"Authorization": f"Bearer {stack.token}"}
    url = f"{stack.url}/models/{MODEL}/aliases/production/shadow"

    # A key a 10 % canary never takes: a worker that has not yet seen the end of the canary
    # test's canary (a worker given no request meanwhile was seen to keep it) still answers
    # with production.
    key = next(k for k in (f"shadow-{i}" for i in range(1000))
               if bucket(MODEL, "production", k) >= CANARY_WEIGHT * 100)  # fmt: skip

    def answer(index: int) -> tuple[str, bytes]:
        response = stack.predict(bodies[index], **{"X-Request-Key": key})
        return response.headers["X-Served-By"], response.content

    def compared() -> dict[str, float]:
        return stack.per_replica(COMPARED, version=str(shadow))

    # Without a shadow, each image twice: one after the other, so both replicas answer it.
    without: dict[int, set[bytes]] = {}
    slots = set()
    for index in [*range(SHADOW_IMAGES)] * 2:
        slot, content = answer(index)
        slots.add(slot)
        without.setdefault(index, set()).add(content)
    assert len(slots) == REPLICAS
    differ = {i: [json.loads(c)["model"] for c in contents]
              for i, contents in without.items() if len(contents) > 1}  # fmt: skip
    assert not differ, f"answers differ without a shadow: {differ}"
    assert {json.loads(c)["model"]["version"] for c in map(min, without.values())} == {production}
    assert sum(compared().values()) == 0  # no shadow ran before this test

    moved = requests.put(url, json={"version": shadow}, headers=admin, timeout=60)
    assert moved.status_code == 200, moved.text
    try:
        # Every replica follows shadows.json within its reload interval: wait until both compare.
        deadline = time.monotonic() + 60
        while not all(compared().values()):
            assert time.monotonic() < deadline, f"a replica never compared: {compared()}"
            for index in range(REPLICAS * 4):
                answer(index)
        before = compared()
        started = time.monotonic()
        with ThreadPoolExecutor(SHADOW_CLIENTS) as pool:
            indexes = [*range(SHADOW_IMAGES)] * SHADOW_REPEATS
            answers = list(pool.map(answer, indexes))
        took = time.monotonic() - started
        changed = [i for i, (_, content) in zip(indexes, answers, strict=True)
                   if content not in without[i]]  # fmt: skip
        assert not changed, f"{len(changed)} answers changed under the shadow, images {changed}"
        assert {slot for slot, _ in answers} == slots

        def settled() -> tuple[dict[str, float], int] | None:
            counted = compared()
            summary = requests.get(f"{stack.url}/models/{MODEL}/shadows", timeout=30).json()
            journal = sum(row["compared"] for row in summary["comparisons"]
                          if row["version"] == shadow)  # fmt: skip
            return (counted, journal) if sum(counted.values()) == journal else None

        deadline = time.monotonic() + 60
        while (totals := settled()) is None:
            assert time.monotonic() < deadline, "the journal never matched the replicas' counts"
            time.sleep(0.5)
        after, journal = totals
    finally:
        ended = requests.delete(url, headers=admin, timeout=60)
        assert ended.status_code == 200, ended.text
    during = {slot: after[slot] - before[slot] for slot in after}
    dropped = stack.per_replica("fashion_shadow_dropped_total", version=str(shadow))
    print(
        f"{len(answers)} requests in {took:.1f} s from {SHADOW_CLIENTS} clients, v{production}"
        f" served, v{shadow} shadowing: none changed; compared during the load by replica"
        f" {during}, in all {after} = {journal} in the journal; dropped {dropped}"
    )
    assert all(count > 0 for count in during.values()), during
    shown = requests.get(f"{stack.url}/models/{MODEL}/shadows", timeout=30).json()
    assert shown["shadows"] == {}
