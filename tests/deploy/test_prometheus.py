"""deploy/prometheus checked without Docker: promtool accepts and unit-tests the rules, and they
read metrics the service exposes from the address it serves.

`make test-docker` runs the monitoring profile for real (the api target up, a recorded rule
with a value); these checks run in `make test` with Debian's promtool (package prometheus).
"""

import re
import shutil
import subprocess

import pytest
import yaml

from tests.deploy.test_k8s import REPO, gunicorn_bind
from tests.deploy.test_proxy import COMPOSE, default
from tests.deploy.test_swarm_stack import image_env

PROMETHEUS = REPO / "deploy" / "prometheus"
CONFIG = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
RULES = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())
RULES_TEST = REPO / "tests" / "deploy" / "prometheus_rules_test.yml"
# The shadow counters come with shadow versions (service/http/shadows.py on its branch); the
# rule on them records nothing until a shadow runs.
SHADOW_METRICS = {"fashion_shadow_predictions_total", "fashion_shadow_disagreements_total"}


def promtool(*args: str) -> str:
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    result = subprocess.run(
        ["promtool", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_promtool_accepts_the_configuration_and_its_rules():
    output = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    rules = sum(len(group["rules"]) for group in RULES["groups"])
    assert f"SUCCESS: {rules} rules found" in output


def test_the_rules_record_and_alert_as_their_unit_tests_expect():
    """Synthetic series of a 10 % canary, errors, feedback, drift and a shadow (promtool)."""
    assert "SUCCESS" in promtool("test", "rules", str(RULES_TEST))


def test_every_rollout_signal_has_a_recording_rule():
    recorded = {rule["record"] for group in RULES["groups"] for rule in group["rules"]
                if "record" in rule}  # fmt: skip
    signals = ("error_ratio", "latency", "version_images:share", "live_accuracy", "drift_psi",
               "flagged", "shadow_disagreement")  # fmt: skip
    for signal in signals:
        assert any(signal in name for name in recorded), signal
    # What an alert watches, but for the shares and medians dashboards compare side by side.
    watched = " ".join(rule["expr"] for group in RULES["groups"] for rule in group["rules"]
                       if "alert" in rule)  # fmt: skip
    unwatched = {name for name in recorded if name not in watched}
    assert unwatched == {
        "fashion:live_accuracy:judged",  # read by behind_best, which is watched
        "fashion:predict_latency_seconds:p50_5m",
        "fashion:predict_requests:error_ratio_5m",  # 4xx included: clients' mistakes too
        "fashion:version_images:share_5m",  # a canary's share is a setting, not an alarm
    }


def test_the_rules_read_metrics_the_service_exposes(client):
    client.post("/predict", data=b"not an image", content_type="image/png")  # a labelled child
    exposed = set(re.findall(r"^# TYPE (\S+) (\w+)", client.get("/metrics").text, re.M))
    names = {name for name, _ in exposed}
    histograms = {name for name, kind in exposed if kind == "histogram"}
    expressions = " ".join(rule["expr"] for g in RULES["groups"] for rule in g["rules"])
    used = set(re.findall(r"\b(fashion_[a-z_]+)", expressions))
    assert used
    for name in used - SHADOW_METRICS:
        family = re.sub(r"_(bucket|count|sum)$", "", name)
        assert name in names or family in histograms, f"{name} is not in /metrics"


def test_prometheus_scrapes_the_api_where_it_serves(client, monkeypatch):
    (job,) = CONFIG["scrape_configs"]
    (target,) = job["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host in COMPOSE["services"]
    _, bound = gunicorn_bind({"FASHION_BIND": image_env("FASHION_BIND")}, monkeypatch).rsplit(
        ":", 1
    )
    assert port == bound
    assert client.get(job["metrics_path"]).status_code == 200
    prometheus = COMPOSE["services"]["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    # On a network of its own with the api: never one the api believes X-Forwarded-* from.
    assert set(prometheus["networks"]) & set(COMPOSE["services"][host]["networks"]) == {"metrics"}
    # No authentication: published on loopback only.
    (published,) = prometheus["ports"]
    assert published.startswith("127.0.0.1:")
    assert published.endswith(":9090")
    assert default(prometheus["build"]["args"]["BASE_IMAGE"]) == default(
        COMPOSE["x-build"]["args"]["BASE_IMAGE"]
    )
