"""The production packaging in deploy/: files that no other test runs, checked without Docker or a cluster."""

from __future__ import annotations

import re
import runpy
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
NGINX_CONF = DEPLOY / "nginx" / "tiers.conf"
TIERS_SERVICES = ("migrate", "web", "worker", "beat")
PLACEHOLDER = re.compile(r"^<[a-z0-9][a-z0-9-]*>$")


def yaml_files() -> list[Path]:
    return sorted(path for pattern in ("*.yaml", "*.yml") for path in DEPLOY.rglob(pattern))


def manifests() -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every Kubernetes object under deploy/k8s/, with the file it is in."""
    for path in sorted(K8S.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                yield path, document


def objects(kind: str) -> list[dict[str, Any]]:
    return [document for _, document in manifests() if document["kind"] == kind]


def workload(name: str) -> dict[str, Any]:
    (found,) = [d for d in objects("Deployment") + objects("Job") if d["metadata"]["name"] == name]
    return found


def pod_specs() -> list[tuple[str, dict[str, Any]]]:
    return [(d["metadata"]["name"], d["spec"]["template"]["spec"]) for d in objects("Deployment") + objects("Job")]


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def documented_settings() -> set[str]:
    """The application's settings: every NAME= line of deploy/.env.example, commented out or not."""
    lines = (DEPLOY / ".env.example").read_text().splitlines()
    return {match[1] for line in lines if (match := re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=", line))}


def documented_process_settings() -> set[str]:
    """gunicorn's and Celery's variables: the first column of docs/operations.md's "Process settings"."""
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("### Process settings", 1)[1].split("\n## ", 1)[0]
    first_cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {name for cell in first_cells for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", cell)}


def dockerfile_stages() -> list[str]:
    """The Dockerfile's stages, each from its FROM line on (line continuations joined)."""
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    stages: list[list[str]] = []
    for line in lines:
        if line.startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return ["\n".join(stage) for stage in stages]


# --- YAML ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", yaml_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_yaml_file_under_deploy_parses(path: Path) -> None:
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert documents


# --- Kubernetes ---------------------------------------------------------------------------------


def test_the_manifests_hold_every_part_of_a_deployment() -> None:
    kinds = {(document["kind"], document["metadata"]["name"]) for _, document in manifests()}
    assert {
        ("Namespace", "tiers"),
        ("ConfigMap", "tiers-config"),
        ("Secret", "tiers-secrets"),
        ("PersistentVolumeClaim", "tiers-uploads"),
        ("Deployment", "tiers-web"),
        ("Service", "tiers-web"),
        ("Ingress", "tiers"),
        ("PodDisruptionBudget", "tiers-web"),
        ("HorizontalPodAutoscaler", "tiers-web"),
        ("HorizontalPodAutoscaler", "tiers-worker"),
        ("Deployment", "tiers-worker"),
        ("Deployment", "tiers-beat"),
        ("Job", "tiers-migrate"),
    } <= kinds


def test_applying_the_directory_never_migrates_nor_overwrites_the_secret() -> None:
    top_level = [document["kind"] for path, document in manifests() if path.parent == K8S]
    assert "Job" not in top_level
    assert "Secret" not in top_level


@pytest.mark.parametrize(("name", "pod"), pod_specs(), ids=[name for name, _ in pod_specs()])
def test_every_container_has_resource_requests_and_a_memory_limit(name: str, pod: dict[str, Any]) -> None:
    for container in containers(pod):
        resources = container.get("resources", {})
        assert {"cpu", "memory"} <= resources.get("requests", {}).keys(), container["name"]
        assert "memory" in resources.get("limits", {}), container["name"]


@pytest.mark.parametrize(("name", "pod"), pod_specs(), ids=[name for name, _ in pod_specs()])
def test_every_pod_runs_as_non_root_on_a_read_only_root(name: str, pod: dict[str, Any]) -> None:
    context = pod["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == 10001
    assert pod["automountServiceAccountToken"] is False
    for container in containers(pod):
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False, container["name"]
        assert security["readOnlyRootFilesystem"] is True, container["name"]
        assert security["capabilities"]["drop"] == ["ALL"], container["name"]
        mounts = {mount["mountPath"] for mount in container.get("volumeMounts", [])}
        assert "/tmp" in mounts, f"{container['name']} has no writable /tmp"  # noqa: S108


def test_web_is_probed_for_readiness_and_liveness_with_an_allowed_host() -> None:
    (config,) = objects("ConfigMap")
    allowed_host = config["data"]["ALLOWED_HOSTS"].split(",")[0]
    web = workload("tiers-web")
    assert web["spec"]["replicas"] == 2
    (container,) = web["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        headers = {h["name"]: h["value"] for h in container[probe]["httpGet"].get("httpHeaders", [])}
        # Django answers 400 to a Host outside ALLOWED_HOSTS, such as the pod's own address.
        assert headers.get("Host") == allowed_host, probe


def test_web_keeps_serving_through_disruptions_and_rollouts() -> None:
    (budget,) = objects("PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] >= 1
    web = workload("tiers-web")
    assert web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = web["spec"]["template"]["spec"]
    gunicorn = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    assert pod["terminationGracePeriodSeconds"] > gunicorn["graceful_timeout"]


def test_beat_is_exactly_one_replica_recreated_and_never_autoscaled() -> None:
    beat = workload("tiers-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"
    targets = {hpa["spec"]["scaleTargetRef"]["name"] for hpa in objects("HorizontalPodAutoscaler")}
    assert targets == {"tiers-web", "tiers-worker"}


def test_web_and_workers_share_the_uploads_volume() -> None:
    (claim,) = objects("PersistentVolumeClaim")
    assert claim["metadata"]["name"] == "tiers-uploads"
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    (config,) = objects("ConfigMap")
    for name in ("tiers-web", "tiers-worker"):
        pod = workload(name)["spec"]["template"]["spec"]
        claims = {
            v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v
        }
        mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
        assert claims.get(mounts.get(config["data"]["TIERS_UPLOAD_DIR"], "")) == "tiers-uploads", name


def test_the_secret_template_holds_placeholders_only() -> None:
    (secret,) = objects("Secret")
    assert "data" not in secret
    values = secret["stringData"]
    assert {"SECRET_KEY", "TIERS_KEK", "DATABASE_URL", "REDIS_URL"} <= values.keys()
    for name, value in values.items():
        assert PLACEHOLDER.match(value), f"{name} looks like a real value: {value!r}"


def test_no_configmap_holds_a_secret() -> None:
    secrets = {"SECRET_KEY", "TIERS_KEK", "DATABASE_URL", "REDIS_URL", "EMAIL_URL", "TIERS_OIDC_PROVIDERS"}
    for config in objects("ConfigMap"):
        assert not secrets & config["data"].keys()


def test_the_stream_ingress_is_unbuffered_and_waits_longer_than_gunicorn() -> None:
    (stream,) = [i for i in objects("Ingress") if i["metadata"]["name"] == "tiers-stream"]
    annotations = stream["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    gunicorn = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > gunicorn["timeout"]
    paths = [p["path"] for rule in stream["spec"]["rules"] for p in rule["http"]["paths"]]
    assert paths == ["/api/v1/grants/"]


# --- Variables ----------------------------------------------------------------------------------


def variables_named_in_manifests_and_compose() -> set[str]:
    names: set[str] = set()
    for _, document in manifests():
        if document["kind"] == "ConfigMap":
            names |= document["data"].keys()
        if document["kind"] == "Secret":
            names |= document["stringData"].keys()
    for _, pod in pod_specs():
        for container in containers(pod):
            names |= {variable["name"] for variable in container.get("env", [])}
    services = compose()["services"]
    for service in TIERS_SERVICES:
        names |= set(services[service].get("environment", {}))
    return names


def test_every_variable_named_in_the_manifests_and_compose_is_documented() -> None:
    named = variables_named_in_manifests_and_compose()
    assert {"ALLOWED_HOSTS", "WEB_CONCURRENCY", "REDIS_URL"} <= named  # the collection itself works
    undocumented = named - documented_settings() - documented_process_settings()
    assert not undocumented, f"add to deploy/.env.example or docs/operations.md: {sorted(undocumented)}"


def test_every_variable_the_packaging_reads_is_documented() -> None:
    read = set(re.findall(r'os\.environ\.get\("([A-Z][A-Z0-9_]*)"', (DEPLOY / "gunicorn.conf.py").read_text()))
    read |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (DEPLOY / "entrypoint.sh").read_text()))
    read |= set(re.findall(r"os\.environ\.get\('([A-Z][A-Z0-9_]*)'", (DEPLOY / "entrypoint.sh").read_text()))
    assert {"PORT", "WEB_CONCURRENCY", "GUNICORN_TIMEOUT", "CELERY_CONCURRENCY"} <= read
    undocumented = read - documented_settings() - documented_process_settings()
    assert not undocumented, f"document in docs/operations.md, Process settings: {sorted(undocumented)}"


# --- Compose ------------------------------------------------------------------------------------


def test_compose_migrates_before_web_worker_and_beat_start() -> None:
    services = compose()["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name


def test_compose_has_healthchecks_restart_policies_and_one_beat() -> None:
    services = compose()["services"]
    assert set(services) == {*TIERS_SERVICES, "postgres", "redis", "nginx"}
    for name in ("web", "worker", "postgres", "redis", "nginx"):
        assert services[name]["healthcheck"]["test"], name
    for name in ("web", "worker", "beat", "postgres", "redis", "nginx"):
        assert services[name]["restart"] == "unless-stopped", name
    assert services["beat"].get("deploy", {}).get("replicas", 1) == 1
    assert services["postgres"]["image"].split(":")[1].split(".")[0] in {"15", "16"}
    assert list(services["nginx"]["ports"]) == ["80:80", "443:443"]
    assert not any("ports" in services[name] for name in TIERS_SERVICES)


def test_compose_settings_come_from_an_env_file_without_secrets_inline() -> None:
    services = compose()["services"]
    for name in TIERS_SERVICES:
        assert services[name]["env_file"] == ".env", name
        assert not {"SECRET_KEY", "TIERS_KEK", "DATABASE_URL"} & set(services[name].get("environment", {})), name
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"].startswith("/run/secrets/")


# --- Dockerfile ---------------------------------------------------------------------------------


def test_the_runtime_stage_has_no_build_tools_and_runs_as_a_user() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    runtime = stages[-1]
    for tool in ("gcc", "g++", "build-essential", "gettext", "pip install"):
        assert tool not in runtime, tool
    installs = " ".join(re.findall(r"apt-get install([^&\n]*)", runtime))
    assert not re.search(r"\S+-dev\b", installs), installs
    assert "libpango-1.0-0" in installs
    users = re.findall(r"^USER\s+(\S+)", runtime, re.MULTILINE)
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_the_image_bakes_in_no_secret_and_builds_translations_and_static_files() -> None:
    stages = dockerfile_stages()
    for stage in stages:
        env_lines = " ".join(re.findall(r"^(?:ENV|ARG)\s+(.*)$", stage, re.MULTILINE))
        for secret in ("SECRET_KEY", "TIERS_KEK", "DATABASE_URL", "REDIS_URL", "EMAIL_URL"):
            assert secret not in env_lines, secret
    builder = stages[0]
    assert "msgfmt" in builder
    assert "collectstatic" in builder
    runtime = stages[-1]
    for expected in ("PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", "EXPOSE 8000", "HEALTHCHECK", "ENTRYPOINT"):
        assert expected in runtime, expected
    assert re.search(
        r"^FROM python:3\.11[.\d]*-slim-bookworm|^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm",
        (DEPLOY / "Dockerfile").read_text(),
        re.MULTILINE,
    )


def test_the_build_context_leaves_secrets_and_local_state_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().splitlines())
    assert {
        ".env",
        "**/.env",
        "deploy/secrets",
        "deploy/tls",
        "demo-credentials.json",
        "var",
        ".git",
        ".venv",
    } <= ignored


def test_the_entrypoint_knows_every_role() -> None:
    script = DEPLOY / "entrypoint.sh"
    subprocess.run(["sh", "-n", str(script)], check=True)
    text = script.read_text()
    for role in ("web", "worker", "beat", "migrate", "manage", "healthcheck"):
        assert re.search(rf"^{role}\)", text, re.MULTILINE), role
    assert "gunicorn -c deploy/gunicorn.conf.py" in text
    assert "broker.wsgi:application" in text
    for option in ("--queues=", "--concurrency=", "--max-tasks-per-child=", "--schedule="):
        assert option in text, option


# --- gunicorn -----------------------------------------------------------------------------------


def test_gunicorn_config_loads_with_known_settings_and_a_long_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    from gunicorn.config import KNOWN_SETTINGS, Timeout

    monkeypatch.setenv("PORT", "9123")
    monkeypatch.setenv("WEB_CONCURRENCY", "5")
    monkeypatch.delenv("GUNICORN_TIMEOUT", raising=False)
    config = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    settings = {name: value for name, value in config.items() if name.islower() and not name.startswith("_")}
    known = {setting.name for setting in KNOWN_SETTINGS}
    helpers = {"math", "os", "annotations"}
    assert set(settings) - helpers <= known, f"not gunicorn settings: {sorted(set(settings) - helpers - known)}"
    assert config["bind"] == "0.0.0.0:9123"
    assert config["workers"] == 5
    assert config["worker_class"] == "sync"
    assert config["timeout"] > Timeout.default
    assert 0 < config["graceful_timeout"] < config["timeout"]
    assert config["max_requests"] > 0
    assert config["max_requests_jitter"] > 0
    assert config["accesslog"] is None  # Tiers logs each request itself, as JSON without paths


def test_gunicorn_workers_default_to_twice_the_cpus_plus_one_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    config = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    assert config["workers"] == min(2 * config["_cpus"]() + 1, config["WORKERS_CAP"])


# --- nginx --------------------------------------------------------------------------------------


def nginx_location(text: str, prefix: str) -> str:
    start = text.index(f"location {prefix}")
    return text[start : text.index("}", start)]


def test_nginx_sets_tls_and_the_security_headers() -> None:
    text = NGINX_CONF.read_text()
    assert re.search(r"^\s*ssl_protocols TLSv1\.2 TLSv1\.3;", text, re.MULTILINE)
    for header in (
        "Strict-Transport-Security",
        "X-Content-Type-Options",
        "X-Frame-Options",
        "Referrer-Policy",
        "Content-Security-Policy",
    ):
        assert re.search(rf"^\s*add_header {header} \S+ always;", text, re.MULTILINE), header
    assert '"nosniff"' in text
    assert '"DENY"' in text
    assert "frame-ancestors 'none'" in text
    assert "return 301 https://$host$request_uri;" in text
    for header in ("X-Forwarded-For $proxy_add_x_forwarded_for", "X-Forwarded-Proto $scheme", "Host $host"):
        assert f"proxy_set_header {header};" in text


def test_nginx_streams_records_unbuffered_and_sizes_uploads_to_the_setting() -> None:
    text = NGINX_CONF.read_text()
    stream = nginx_location(text, "/api/v1/grants/")
    assert "proxy_buffering off;" in stream
    read_timeout = int(re.findall(r"proxy_read_timeout (\d+)s;", stream)[0])
    assert read_timeout > runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))["timeout"]
    example = (DEPLOY / ".env.example").read_text()
    upload_limit = int(re.findall(r"^TIERS_UPLOAD_MAX_BYTES=(\d+)", example, re.MULTILINE)[0])
    sizes = [int(size) for size in re.findall(r"client_max_body_size (\d+)m;", text)]
    assert min(sizes) <= 2  # small by default
    assert max(sizes) * 1024 * 1024 >= upload_limit
    for location in (r"~ ^/api/v1/datasets/[^/]+/uploads/$", r"~ ^/org/[^/]+/datasets/[^/]+/$"):
        assert f"client_max_body_size {max(sizes)}m;" in nginx_location(text, location)


def self_signed_certificate(directory: Path) -> None:
    """A throwaway certificate for tiers.example.eu, made with the cryptography package."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tiers.example.eu")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("tiers.example.eu")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (directory / "tiers.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / "tiers.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (apt-get install nginx)")
def test_nginx_accepts_the_configuration(tmp_path: Path) -> None:
    self_signed_certificate(tmp_path)
    site = NGINX_CONF.read_text().replace("/etc/nginx/tls/", f"{tmp_path}/")
    (tmp_path / "tiers.conf").write_text(site)
    temp_paths = "\n".join(
        f"    {kind}_temp_path {tmp_path}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n    access_log off;\n{temp_paths}\n    include {tmp_path}/tiers.conf;\n}}\n"
    )
    result = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
