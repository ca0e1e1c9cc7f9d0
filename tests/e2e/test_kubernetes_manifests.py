"""deploy/kubernetes: every manifest parses, and the references between them
hold: selectors find pods, Service ports find container ports, probes find
ports, the arguments name the Services and ports that exist, and what the
pods need from bootstrap.sh is what bootstrap.sh makes."""
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
# Native sidecars (restartPolicy on an init container) need 1.29; the latest is checked too.
KUBERNETES_VERSIONS = ("1.29", "1.34")
WORKLOADS = {"Deployment", "StatefulSet"}


def load_documents():
    documents = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document is not None:
                documents.append((path.name, document))
    return documents


DOCUMENTS = load_documents()


def of_kind(kind):
    return [d for _, d in DOCUMENTS if d["kind"] == kind]


def named(kind, name, namespace=None):
    found = [d for d in of_kind(kind) if d["metadata"]["name"] == name
             and (namespace is None or d["metadata"].get("namespace") == namespace)]
    assert found, f"no {kind} {namespace}/{name}"
    return found[0]


def workloads():
    return [d for _, d in DOCUMENTS if d["kind"] in WORKLOADS]


def pod_containers(workload):
    spec = workload["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def container_ports(container):
    return {p.get("name"): p["containerPort"] for p in container.get("ports", [])}


def resolve_port(port, containers):
    """A Service targetPort or a probe port (a number or a name) as a number, or None."""
    for container in containers:
        ports = container_ports(container)
        if isinstance(port, int) and port in ports.values():
            return port
        if isinstance(port, str) and port in ports:
            return ports[port]
    return None


def argument(args, flag):
    """The value of --flag in args, written `--flag value` or `--flag=value`."""
    for index, arg in enumerate(args):
        if arg == flag:
            return args[index + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def all_arguments(args, flag):
    return [args[i + 1] for i, arg in enumerate(args) if arg == flag]


def test_every_manifest_parses_and_names_its_kind_and_namespace():
    assert {name for name, _ in DOCUMENTS} == {"00-namespaces.yaml", "10-etcd.yaml", "20-control-plane.yaml", "30-demo.yaml"}
    namespaces = {d["metadata"]["name"] for d in of_kind("Namespace")}
    assert namespaces == {"swiftmesh-system", "swiftmesh-demo"}
    for _, document in DOCUMENTS:
        assert document.get("apiVersion") and document.get("kind") and document["metadata"].get("name")
        if document["kind"] not in {"Namespace", "MutatingWebhookConfiguration"}:
            assert document["metadata"].get("namespace") in namespaces, document["metadata"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_document_is_valid_for_the_kubernetes_api(version):
    """The API's own OpenAPI schema, strictly: a misspelt or misplaced field fails."""
    for name, document in DOCUMENTS:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{name}: {document['kind']}/{document['metadata']['name']}: {error.message} at {list(error.path)}")


def test_workload_selectors_match_their_pod_templates():
    for workload in workloads():
        selector = workload["spec"]["selector"]["matchLabels"]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), workload["metadata"]["name"]


def test_every_service_selects_pods_and_its_target_ports_exist_there():
    for service in of_kind("Service"):
        namespace = service["metadata"]["namespace"]
        selector = service["spec"]["selector"]
        selected = [w for w in workloads() if w["metadata"]["namespace"] == namespace
                    and selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()]
        assert selected, f"Service {service['metadata']['name']} selects no pods"
        for workload in selected:
            for port in service["spec"]["ports"]:
                target = port.get("targetPort", port["port"])
                assert resolve_port(target, pod_containers(workload)) is not None, (
                    f"Service {service['metadata']['name']} port {port['name']}: no container port {target} "
                    f"in {workload['metadata']['name']}")


def test_images_loaded_into_the_cluster_are_not_pulled_again():
    for workload in workloads():
        for container in pod_containers(workload):
            assert container.get("imagePullPolicy") == "IfNotPresent", f"{workload['metadata']['name']}/{container['name']}"


def test_probes_point_at_declared_ports():
    for workload in workloads():
        for container in pod_containers(workload):
            for probe_kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = container.get(probe_kind)
                if not probe:
                    continue
                action = probe.get("httpGet") or probe.get("tcpSocket")
                assert action, f"{workload['metadata']['name']}/{container['name']} {probe_kind}"
                assert resolve_port(action["port"], [container]) is not None, (
                    f"{workload['metadata']['name']}/{container['name']} {probe_kind} port {action['port']}")


def test_etcd_members_find_each_other_through_the_headless_service():
    service = named("Service", "etcd", "swiftmesh-system")
    statefulset = named("StatefulSet", "etcd", "swiftmesh-system")
    assert service["spec"]["clusterIP"] == "None"
    assert statefulset["spec"]["serviceName"] == "etcd"
    replicas = statefulset["spec"]["replicas"]
    assert replicas == 3
    command = statefulset["spec"]["template"]["spec"]["containers"][0]["command"]
    initial = argument(command, "--initial-cluster")
    members = dict(member.split("=", 1) for member in initial.split(","))
    assert members == {f"etcd-{i}": f"http://etcd-{i}.etcd.swiftmesh-system.svc:2380" for i in range(replicas)}


def test_the_control_plane_runs_two_replicas_on_etcd_with_its_service_and_account():
    deployment = named("Deployment", "swiftmesh-control-plane", "swiftmesh-system")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    account = named("ServiceAccount", pod["serviceAccountName"], "swiftmesh-system")
    # It calls no Kubernetes API: no token in the pod, no role bound to the account.
    assert account["automountServiceAccountToken"] is False and pod["automountServiceAccountToken"] is False
    assert not [b for b in of_kind("RoleBinding") + of_kind("ClusterRoleBinding")
                if any(s.get("name") == account["metadata"]["name"] for s in b.get("subjects", []))]
    container = pod["containers"][0]
    args = container["args"]
    ports = container_ports(container)
    assert argument(args, "--listen") == f"0.0.0.0:{ports['sidecar-api']}"
    assert argument(args, "--http") == f"0.0.0.0:{ports['http-api']}"
    assert argument(args, "--webhook") == f"0.0.0.0:{ports['webhook']}"
    store = argument(args, "--store")
    assert store.startswith("etcd://")
    statefulset = named("StatefulSet", "etcd", "swiftmesh-system")
    client_port = container_ports(statefulset["spec"]["template"]["spec"]["containers"][0])["client"]
    assert store[len("etcd://"):].split(",") == [
        f"etcd-{i}.etcd.swiftmesh-system.svc:{client_port}" for i in range(statefulset["spec"]["replicas"])]
    # Injected sidecars reach it through its Service, at the sidecar API's port.
    service = named("Service", "swiftmesh-control-plane", "swiftmesh-system")
    by_target = {p["targetPort"]: p["port"] for p in service["spec"]["ports"]}
    assert argument(args, "--inject-control-plane") == f"swiftmesh-control-plane.swiftmesh-system.svc:{by_target['sidecar-api']}"
    assert argument(args, "--webhook-dns-name") == "swiftmesh-control-plane.swiftmesh-system.svc"
    budget = named("PodDisruptionBudget", "swiftmesh-control-plane", "swiftmesh-system")
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels(deployment).items()


def pod_labels(workload):
    return workload["spec"]["template"]["metadata"]["labels"]


def test_the_webhook_calls_the_control_planes_webhook_port_for_labeled_pods():
    configuration = named("MutatingWebhookConfiguration", "swiftmesh-sidecar-injector")
    (webhook,) = configuration["webhooks"]
    assert webhook["admissionReviewVersions"] == ["v1"]
    target = webhook["clientConfig"]["service"]
    assert target["path"] == "/inject"
    service = named("Service", target["name"], target["namespace"])
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == target["port"]]
    assert port["targetPort"] == "webhook"
    args = named("Deployment", "swiftmesh-control-plane", "swiftmesh-system")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert argument(args, "--webhook-dns-name") == f"{target['name']}.{target['namespace']}.svc"
    assert webhook["objectSelector"]["matchLabels"] == {"swiftmesh.io/inject": "true"}
    # bootstrap.sh adds the caBundle; a manifest that had one would wipe it on every apply.
    assert "caBundle" not in webhook["clientConfig"]
    assert webhook["rules"][0]["resources"] == ["pods"] and webhook["rules"][0]["operations"] == ["CREATE"]


def demo_deployments():
    return [d for d in of_kind("Deployment") if d["metadata"]["namespace"] == "swiftmesh-demo"]


def sidecar_of(workload):
    (sidecar,) = [c for c in workload["spec"]["template"]["spec"].get("initContainers", [])
                  if c["name"] == "swiftmesh-sidecar"]
    return sidecar


@pytest.mark.parametrize("name", ["user-v1", "user-v2", "alive", "gateway"])
def test_demo_pods_start_their_app_after_a_native_sidecar(name):
    deployment = named("Deployment", name, "swiftmesh-demo")
    sidecar = sidecar_of(deployment)
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["startupProbe"]["httpGet"]["path"] == "/ready"
    args = sidecar["args"]
    assert args[0] == "sidecar"
    admin_port = int(argument(args, "--admin").rsplit(":", 1)[1])
    assert sidecar["startupProbe"]["httpGet"]["port"] == admin_port
    # The service is the pod's app label, and the app listens on the port the sidecar sends to.
    service = argument(args, "--service")
    assert service == pod_labels(deployment)["app"]
    (app,) = deployment["spec"]["template"]["spec"]["containers"]
    app_port = int(argument(args, "--app").rsplit(":", 1)[1])
    assert container_ports(app)["app"] == app_port
    assert argument(app["args"], "--listen") == f"0.0.0.0:{app_port}"
    # The control plane named is its Service, at the sidecar API's port.
    control_plane = named("Service", "swiftmesh-control-plane", "swiftmesh-system")
    api_port = [p["port"] for p in control_plane["spec"]["ports"] if p["targetPort"] == "sidecar-api"][0]
    assert argument(args, "--control-plane") == f"swiftmesh-control-plane.swiftmesh-system.svc:{api_port}"
    # The instance registered is the pod's IP at the inbound port, which the headless Service names "mesh".
    inbound_port = int(argument(args, "--inbound").rsplit(":", 1)[1])
    assert argument(args, "--advertise") == f"$(POD_IP):{inbound_port}"
    assert container_ports(sidecar)["mesh"] == inbound_port
    if "version" in pod_labels(deployment):
        assert all_arguments(args, "--label") == [f"version={pod_labels(deployment)['version']}"]


def test_the_gateway_calls_each_service_at_its_sidecars_upstream_listener():
    gateway = named("Deployment", "gateway", "swiftmesh-demo")
    upstreams = dict(u.split("=", 1) for u in all_arguments(sidecar_of(gateway)["args"], "--upstream"))
    (app,) = gateway["spec"]["template"]["spec"]["containers"]
    assert upstreams == {"user": argument(app["args"], "--user"), "alive": argument(app["args"], "--alive")}
    services = {d["metadata"]["name"] for d in of_kind("Service") if d["metadata"]["namespace"] == "swiftmesh-demo"}
    assert set(upstreams) <= services


def test_called_services_are_headless_with_the_mesh_port():
    for name in ("user", "alive"):
        service = named("Service", name, "swiftmesh-demo")
        assert service["spec"]["clusterIP"] == "None"
        assert "mesh" in {p["targetPort"] for p in service["spec"]["ports"]}


def test_what_the_pods_need_from_bootstrap_is_what_it_makes():
    script = (DEPLOY / "bootstrap.sh").read_text()
    default_services = re.search(r"SERVICES=\(([^)]*)\); fi", script).group(1).split()
    assert 'create configmap swiftmesh-ca-root --from-literal=root.pem=' in script
    assert 'create secret generic "swiftmesh-join-$service" --from-literal=token=' in script
    assert "--namespace" not in script and 'NAMESPACE="${1:-swiftmesh-demo}"' in script
    for deployment in demo_deployments():
        pod = deployment["spec"]["template"]["spec"]
        sidecar = sidecar_of(deployment)
        secrets = [e["valueFrom"]["secretKeyRef"] for e in sidecar["env"] if "secretKeyRef" in e.get("valueFrom", {})]
        assert secrets == [{"name": f"swiftmesh-join-{argument(sidecar['args'], '--service')}", "key": "token"}]
        assert argument(sidecar["args"], "--service") in default_services
        (mount,) = sidecar["volumeMounts"]
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert volume["configMap"]["name"] == "swiftmesh-ca-root"
        assert argument(sidecar["args"], "--control-plane-ca") == f"{mount['mountPath']}/root.pem"
