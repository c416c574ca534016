#!/usr/bin/env bash
# Static checks of the container setup that need no Docker engine and no Kubernetes cluster:
#   - every file that docker/Dockerfile, docker/compose.yaml and the kustomizations (docker/k8s/,
#     docker/k8s/scale-out/) reference exists, and every ConfigMap and PVC their pods mount;
#   - the CMake options the Dockerfile passes exist, and its library collection step
#     (docker/collect-runtime.sh) yields a binary that runs with only the collected libraries;
#   - the compose file passes `docker compose config` (or `docker-compose config`) when one is
#     installed, and every YAML file parses (python3-yaml);
#   - the pipeline configs (docker/pipeline.yaml, each ConfigMap's) pass `trove validate`, and the
#     load generator's flags are accepted by `trove gen`;
#   - the numbers that must agree do: the metrics port of the configs, the HEALTHCHECK, the
#     probes, Prometheus' targets and annotations; grace periods longer than shutdown_timeout; the
#     GPU limit; a checkpoint.dir shared by several replicas on a ReadWriteMany claim; a
#     PodDisruptionBudget that selects the Deployment's pods.
# Usage: docker/check.sh [path/to/trove]   (default build/trove). Exit code 0 when all pass.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
trove=$(realpath "${1:-$root/build/trove}")
cd "$root"
[[ -x $trove ]] || { echo "check.sh: no trove binary at $trove (build it first)" >&2; exit 1; }
python=/usr/bin/python3
"$python" -c 'import yaml' 2>/dev/null ||
  { echo "check.sh: python3-yaml is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }

failures=0
pass() { echo "ok    $*"; }
fail() { echo "FAIL  $*"; failures=$((failures + 1)); }
skip() { echo "skip  $*"; }

# ---- the Dockerfile ------------------------------------------------------------------------------
for path in $(awk '/^COPY / && !/--from=/ { for (i = 2; i < NF; ++i) print $i }' docker/Dockerfile); do
  [[ $path == . ]] && continue
  if [[ -e $path ]]; then pass "Dockerfile COPY $path exists"; else fail "Dockerfile COPY $path: missing"; fi
done
for script in $(grep -oE '(scripts|docker)/[A-Za-z0-9_.-]+\.sh' docker/Dockerfile | sort -u); do
  if [[ -x $script ]]; then pass "Dockerfile runs $script (exists, executable)"; else fail "Dockerfile runs $script: missing or not executable"; fi
done
for option in $(grep -oE -- '-D[A-Z_]+=' docker/Dockerfile | sed 's/^-D//; s/=$//' | sort -u); do
  if [[ $option == CMAKE_* ]] || grep -q "$option" CMakeLists.txt; then
    pass "Dockerfile's CMake option $option is known"
  else
    fail "Dockerfile passes -D$option, which CMakeLists.txt does not define"
  fi
done
collected=$(mktemp -d)
trap 'rm -rf "$collected"' EXIT
if docker/collect-runtime.sh "$trove" "$collected" >/dev/null &&
   env -i LD_LIBRARY_PATH="$collected/lib" "$collected/bin/$(basename "$trove")" --version >/dev/null; then
  pass "collect-runtime.sh: the binary runs with only the $(ls "$collected/lib" | wc -l) collected libraries"
else
  fail "collect-runtime.sh: the collected binary does not run"
fi
if "$trove" healthcheck --help >/dev/null; then pass "trove healthcheck exists (the HEALTHCHECK)"; else fail "trove healthcheck missing"; fi

# ---- compose -------------------------------------------------------------------------------------
if docker compose version >/dev/null 2>&1; then
  if docker compose -f docker/compose.yaml config -q; then pass "docker compose config"; else fail "docker compose config"; fi
elif command -v docker-compose >/dev/null; then
  if docker-compose -f docker/compose.yaml config -q; then pass "docker-compose config ($(docker-compose version --short))"; else fail "docker-compose config"; fi
else
  skip "docker compose config: neither the compose plugin nor docker-compose is installed"
fi
kustomizations=$(find docker/k8s -name kustomization.yaml -printf "%h\n" | sort)
if command -v kubectl >/dev/null; then
  for folder in $kustomizations; do
    if kubectl kustomize "$folder" >/dev/null; then pass "kubectl kustomize $folder"; else fail "kubectl kustomize $folder"; fi
  done
else
  skip "kubectl kustomize: kubectl not installed"
fi

# ---- YAML, configs and the numbers that must agree ------------------------------------------------
"$python" - "$trove" $kustomizations <<'PY' || failures=$((failures + $?))
import os, re, subprocess, sys, tempfile
import yaml

trove = sys.argv[1]
kustomizations = sys.argv[2:]
failed = 0

def ok(message):
    print(f"ok    {message}")

def check(condition, message):
    global failed
    if condition:
        ok(message)
    else:
        print(f"FAIL  {message}")
        failed += 1

def seconds(duration):
    """trove/compose durations: 500ms, 10s, 5m, 1h, 1m30s, or plain seconds for k8s ints."""
    if isinstance(duration, (int, float)):
        return float(duration)
    total, units = 0.0, {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for value, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration):
        total += float(value) * units[unit]
    return total

def validate(text, what):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    r = subprocess.run([trove, "validate", "-c", f.name], capture_output=True, text=True)
    os.unlink(f.name)
    check(r.returncode == 0, f"trove validate {what}" + ("" if r.returncode == 0 else f": {r.stderr.strip()}"))

def port_of(listen):
    return int(str(listen).rsplit(":", 1)[1])

docs = {}
for folder in ["docker"] + kustomizations:
    for name in sorted(os.listdir(folder)):
        if name.endswith((".yaml", ".yml")):
            path = os.path.join(folder, name)
            try:
                docs[path] = [d for d in yaml.safe_load_all(open(path)) if d is not None]
                ok(f"{path} parses ({len(docs[path])} document{'s' if len(docs[path]) != 1 else ''})")
            except yaml.YAMLError as error:
                check(False, f"{path} parses: {error}")

# compose: referenced files, grace period, the loadgen's flags, ports
compose = docs["docker/compose.yaml"][0]
pipeline = docs["docker/pipeline.yaml"][0]
validate(open("docker/pipeline.yaml").read(), "docker/pipeline.yaml")
metrics_port = port_of(pipeline["metrics"]["listen"])
for name, service in compose["services"].items():
    for volume in service.get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith("."):
            check(os.path.exists(os.path.join("docker", source)), f"compose {name}: volume {source} exists")
    build = service.get("build")
    if build:
        context = os.path.normpath(os.path.join("docker", build["context"]))
        check(os.path.exists(os.path.join(context, build["dockerfile"])),
              f"compose {name}: build {build['dockerfile']} exists in context {context}")
    if "stop_grace_period" in service:
        check(seconds(service["stop_grace_period"]) > seconds(pipeline["shutdown_timeout"]),
              f"compose {name}: stop_grace_period {service['stop_grace_period']} > shutdown_timeout "
              f"{pipeline['shutdown_timeout']}")
    if name.startswith("trove"):
        check(any(str(p).startswith(f"{metrics_port}:") for p in service.get("ports", [])),
              f"compose {name}: publishes the metrics port {metrics_port}")
gpu = compose["services"]["trove"]
devices = gpu.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
check(gpu.get("gpus") == "all" or any("gpu" in d.get("capabilities", []) for d in devices),
      "compose trove: reserves the GPUs")
check("cpu" in compose["services"]["trove-cpu"].get("profiles", []), "compose trove-cpu: profile cpu")

def gen_accepts(args, what):
    """`trove gen` parses these flags: the same command, to a file, for 10 events."""
    args = list(args)
    for flag in ("--kafka", "--topic"):
        while flag in args:
            at = args.index(flag)
            del args[at:at + 2]
    if "--events" in args:
        at = args.index("--events")
        del args[at:at + 2]
    args = [a for a in args if a not in ("-q", "--quiet")]
    r = subprocess.run([trove] + args + ["--events", "10", "-o", os.devnull],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"{what}: trove {' '.join(args[:1])} accepts its flags"
          + ("" if r.returncode == 0 else f": {r.stderr.strip()}"))

gen_accepts(compose["services"]["loadgen"]["command"], "compose loadgen")

prometheus = docs["docker/prometheus.yml"][0]
targets = [t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
check(all(port_of(t) == metrics_port for t in targets) and
      {t.split(":")[0] for t in targets} <= set(compose["services"]),
      f"prometheus.yml: targets {targets} are compose services on port {metrics_port}")

dockerfile = open("docker/Dockerfile").read()
health = re.search(r'HEALTHCHECK.*?CMD \[(.*?)\]', dockerfile, re.S)
check(health is not None and f'"127.0.0.1:{metrics_port}"' in health.group(1) and "/healthz" in health.group(1),
      f"Dockerfile HEALTHCHECK probes /healthz on port {metrics_port}")

# k8s, for each kustomization: its resources exist; the ConfigMap's pipeline; the pod's mounts,
# probes, ports, GPU, grace period; a shared checkpoint.dir; the PodDisruptionBudget
def check_kustomization(folder, sidecar):
    label = "k8s" + folder[len("docker/k8s"):]
    resources = docs[os.path.join(folder, "kustomization.yaml")][0]["resources"]
    kinds = {}
    for name in resources:
        path = os.path.normpath(os.path.join(folder, name))
        check(os.path.exists(path), f"{label} kustomization: {name} exists")
        for d in docs.get(path, []):
            kinds.setdefault(d["kind"], []).append(d)
    needed = {"ConfigMap", "Deployment"}
    check(needed <= set(kinds) and all(len(kinds[k]) == 1 for k in needed),
          f"{label}: one ConfigMap and one Deployment")
    configmap, deployment = kinds["ConfigMap"][0], kinds["Deployment"][0]
    claims = {c["metadata"]["name"]: c for c in kinds.get("PersistentVolumeClaim", [])}
    pipeline_text = configmap["data"]["pipeline.yaml"]
    validate(pipeline_text, f"the {label} ConfigMap's pipeline.yaml")
    pipeline = yaml.safe_load(pipeline_text)
    template = deployment["spec"]["template"]
    pod = template["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    if sidecar:
        check(len(containers) >= 2 and "trove" in containers,
              f"{label}: an application container beside the trove sidecar")
    else:
        check(list(containers) == ["trove"], f"{label}: trove alone in the pod")
    trove_c = containers["trove"]
    ports = {p["name"]: p["containerPort"] for p in trove_c.get("ports", [])}
    port = port_of(pipeline["metrics"]["listen"])
    check(ports.get("metrics") == port, f"{label}: containerPort 'metrics' = metrics.listen port {port}")
    annotated = template["metadata"].get("annotations", {}).get("prometheus.io/port")
    check(annotated in (None, str(port)), f"{label}: prometheus.io/port annotation = {port}")
    check(str(trove_c["resources"]["limits"].get("nvidia.com/gpu")) == "1", f"{label}: trove limits nvidia.com/gpu: 1")
    probes = {kind: trove_c.get(kind, {}).get("httpGet", {}) for kind in ("livenessProbe", "readinessProbe")}
    check(probes["livenessProbe"].get("path") == "/healthz", f"{label}: livenessProbe on /healthz")
    check(probes["readinessProbe"].get("path") == "/readyz", f"{label}: readinessProbe on /readyz")
    check(all(p.get("port") in ("metrics", port) for p in probes.values()), f"{label}: probes use the metrics port")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for volume in volumes.values():
        if "configMap" in volume:
            check(volume["configMap"]["name"] == configmap["metadata"]["name"],
                  f"{label}: volume {volume['name']} is the kustomization's ConfigMap")
        if "persistentVolumeClaim" in volume:
            check(volume["persistentVolumeClaim"]["claimName"] in claims,
                  f"{label}: volume {volume['name']} is a PersistentVolumeClaim of the kustomization")
    mounts = {m["mountPath"]: volumes.get(m["name"], {}) for m in trove_c.get("volumeMounts", [])}
    check(mounts.get("/etc/trove", {}).get("configMap", {}).get("name") == configmap["metadata"]["name"],
          f"{label}: /etc/trove is the ConfigMap")
    check("-c" in trove_c["args"] and trove_c["args"][trove_c["args"].index("-c") + 1] == "/etc/trove/pipeline.yaml",
          f"{label}: trove runs the mounted pipeline.yaml")
    pre_stop = trove_c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pause = float(pre_stop[1]) if len(pre_stop) == 2 and pre_stop[0] == "sleep" else 0.0
    grace = pod.get("terminationGracePeriodSeconds", 30)
    need = pause + seconds(pipeline["shutdown_timeout"])
    check(grace > need, f"{label}: terminationGracePeriodSeconds {grace} > preStop {pause:g} s + shutdown_timeout "
          f"{pipeline['shutdown_timeout']}")
    replicas = deployment["spec"].get("replicas", 1)
    state = pipeline.get("checkpoint", {}).get("dir")
    if state:
        volume = mounts.get(state, {})
        claim = claims.get(volume.get("persistentVolumeClaim", {}).get("claimName"), {})
        modes = claim.get("spec", {}).get("accessModes", [])
        shared = replicas > 1
        check(bool(claim) and (not shared or "ReadWriteMany" in modes),
              f"{label}: checkpoint.dir {state} is mounted from a PersistentVolumeClaim"
              + (f" with ReadWriteMany (shared by {replicas} replicas)" if shared else "")
              + ("" if not shared or "ReadWriteMany" in modes else f": accessModes {modes}"))
    for budget in kinds.get("PodDisruptionBudget", []):
        selector = budget["spec"].get("selector", {}).get("matchLabels", {})
        labels = template["metadata"].get("labels", {})
        check(bool(selector) and selector.items() <= labels.items() and
              selector == deployment["spec"]["selector"]["matchLabels"],
              f"{label}: PodDisruptionBudget {budget['metadata']['name']} selects the Deployment's pods")
        check(budget["spec"].get("maxUnavailable") == 1,
              f"{label}: PodDisruptionBudget maxUnavailable: 1 (one replica's partitions move at a time)")
    app = containers.get("app")
    if app and app.get("args", [None])[0] == "gen":
        gen_accepts(app["args"], f"{label} app")

for folder in kustomizations:
    check_kustomization(folder, sidecar=folder == "docker/k8s")  # the others run trove standalone
sys.exit(failed)
PY

echo
if ((failures)); then
  echo "docker/check.sh: $failures check(s) failed"
  exit 1
fi
echo "docker/check.sh: all checks passed (no image was built and no container or pod was run)"
