"""Sidecar injection: the control plane's mutating admission webhook
(`--webhook`, HTTPS, POST /inject) answers AdmissionReview v1 documents
shaped as the Kubernetes API server sends them. curl plays the API server's
HTTPS client (checking the certificate against the mesh's root, by the
Service's DNS name), jsonpatch applies the JSONPatch as the API server would,
and the injected sidecar's own command runs against the control plane."""
import base64
import copy
import json
import subprocess
import uuid
from pathlib import Path

import jsonpatch
import kubernetes_validate
import pytest
import yaml

from support.mesh import ControlPlane, _log_level
from support.proxy import SwiftmeshProcess, binary_path
from support.ports import free_port
from support.util import wait_until

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
WEBHOOK_NAME = "swiftmesh-control-plane.swiftmesh-system.svc"


@pytest.fixture(scope="module")
def webhook(tmp_path_factory):
    """One control plane with the webhook for the whole module: the webhook keeps no state between reviews."""
    port = free_port()
    control_plane = ControlPlane(tmp_path_factory.mktemp("injection"), extra_args=(
        "--webhook", f"127.0.0.1:{port}", "--webhook-dns-name", WEBHOOK_NAME,
        "--inject-image", "registry.example/swiftmesh:1.0"))
    try:
        control_plane.start()
        wait_until(lambda: _post(control_plane, port, b"{}").returncode == 0, 20, message="the webhook to listen")
        yield control_plane, port
    finally:
        control_plane.stop()


def _post(control_plane, port, body: bytes):
    """curl as the API server: HTTPS to the Service's name, the mesh's root as caBundle."""
    return subprocess.run(
        ["curl", "-sS", "--max-time", "10", "--resolve", f"{WEBHOOK_NAME}:{port}:127.0.0.1",
         "--cacert", str(control_plane.root_file), "-H", "Content-Type: application/json",
         "--data-binary", "@-", "-w", "\n%{http_code}", f"https://{WEBHOOK_NAME}:{port}/inject"],
        input=body, capture_output=True, timeout=20)


def review(webhook, pod: dict) -> dict:
    """The AdmissionReview response to a CREATE of `pod`, as the API server sends it."""
    control_plane, port = webhook
    uid = str(uuid.uuid4())
    request = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": pod["metadata"].get("namespace", "swiftmesh-demo"),
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                         "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": pod,
            "oldObject": None,
            "dryRun": False,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        },
    }
    done = _post(control_plane, port, json.dumps(request).encode())
    assert done.returncode == 0, done.stderr
    body, status = done.stdout.decode().rsplit("\n", 1)
    assert status == "200", body
    answer = json.loads(body)
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == uid
    return answer["response"]


def patched(pod: dict, response: dict) -> dict:
    assert response["allowed"] is True and response["patchType"] == "JSONPatch"
    operations = json.loads(base64.b64decode(response["patch"]))
    return jsonpatch.apply_patch(pod, operations)


def demo_pod(deployment_name: str) -> tuple[dict, dict]:
    """(the pod of a deploy/kubernetes/30-demo.yaml Deployment as written,
    the same pod without its sidecar and labeled for injection)."""
    documents = list(yaml.safe_load_all((DEPLOY / "30-demo.yaml").read_text()))
    (deployment,) = [d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == deployment_name]
    template = deployment["spec"]["template"]
    written = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {**template["metadata"], "namespace": "swiftmesh-demo",
                            "generateName": f"{deployment_name}-7d9f8b6c4-"},
               "spec": template["spec"]}
    bare = copy.deepcopy(written)
    bare["metadata"]["labels"]["swiftmesh.io/inject"] = "true"
    bare["spec"]["initContainers"] = [c for c in bare["spec"]["initContainers"] if c["name"] != "swiftmesh-sidecar"]
    if not bare["spec"]["initContainers"]:
        del bare["spec"]["initContainers"]
    bare["spec"]["volumes"] = [v for v in bare["spec"]["volumes"] if v["name"] != "swiftmesh-ca-root"]
    if not bare["spec"]["volumes"]:
        del bare["spec"]["volumes"]
    return written, bare


@pytest.mark.parametrize("deployment", ["user-v1", "gateway"])
def test_injection_gives_a_pod_the_sidecar_the_demo_manifests_write_out(webhook, deployment):
    written, bare = demo_pod(deployment)
    if deployment == "gateway":
        bare["metadata"]["annotations"] = {"swiftmesh.io/upstreams": "user=7001, alive=7002",
                                           "swiftmesh.io/app-protocol": "http1"}
    else:
        bare["metadata"]["annotations"] = {"swiftmesh.io/app-protocol": "http2"}
    result = patched(bare, review(webhook, bare))

    assert result["metadata"]["annotations"]["swiftmesh.io/status"] == "injected"
    (sidecar,) = [c for c in result["spec"]["initContainers"] if c["name"] == "swiftmesh-sidecar"]
    (expected,) = [c for c in written["spec"]["initContainers"] if c["name"] == "swiftmesh-sidecar"]
    assert sidecar == {**expected, "image": "registry.example/swiftmesh:1.0"}
    assert result["spec"]["volumes"] == written["spec"]["volumes"]
    assert result["spec"]["containers"] == written["spec"]["containers"], "the app's containers are untouched"
    kubernetes_validate.validate(result, "1.29", strict=True)


def test_the_sidecar_goes_first_among_existing_init_containers_and_volumes_are_kept(webhook):
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "web", "labels": {"swiftmesh.io/inject": "true", "app.kubernetes.io/name": "web",
                                                  "version": "v3"},
                        "annotations": {"swiftmesh.io/app-port": "9090", "swiftmesh.io/labels": "zone=a"}},
           "spec": {"initContainers": [{"name": "migrate", "image": "web:1"}],
                    "containers": [{"name": "web", "image": "web:1"}],
                    "volumes": [{"name": "cache", "emptyDir": {}}]}}
    result = patched(pod, review(webhook, pod))
    kubernetes_validate.validate(result, "1.29", strict=True)
    assert [c["name"] for c in result["spec"]["initContainers"]] == ["swiftmesh-sidecar", "migrate"]
    assert [v["name"] for v in result["spec"]["volumes"]] == ["cache", "swiftmesh-ca-root"]
    args = result["spec"]["initContainers"][0]["args"]
    assert args[args.index("--service") + 1] == "web"
    assert args[args.index("--app") + 1] == "127.0.0.1:9090"
    assert args[args.index("--app-protocol") + 1] == "auto"
    assert [args[i + 1] for i, a in enumerate(args) if a == "--label"] == ["version=v3", "zone=a"]
    assert result["metadata"]["annotations"]["swiftmesh.io/labels"] == "zone=a"


def test_pods_not_labeled_or_injected_already_pass_unchanged(webhook):
    _, bare = demo_pod("alive")
    unlabeled = copy.deepcopy(bare)
    del unlabeled["metadata"]["labels"]["swiftmesh.io/inject"]
    response = review(webhook, unlabeled)
    assert response["allowed"] is True and "patch" not in response

    once = patched(bare, review(webhook, bare))
    again = review(webhook, once)  # reinvocation, or a pod created from an injected spec
    assert again["allowed"] is True and "patch" not in again


@pytest.mark.parametrize("annotations, labels, message", [
    ({}, {"swiftmesh.io/inject": "true"}, "swiftmesh.io/service: the pod names no service"),
    ({"swiftmesh.io/app-port": "http"}, {"swiftmesh.io/inject": "true", "app": "web"},
     'swiftmesh.io/app-port: "http" is not a port from 1 to 65535'),
    ({"swiftmesh.io/app-port": "15006"}, {"swiftmesh.io/inject": "true", "app": "web"},
     "swiftmesh.io/app-port: 15006 is the sidecar's own; move the app to another port"),
    ({"swiftmesh.io/upstreams": "user"}, {"swiftmesh.io/inject": "true", "app": "web"},
     'swiftmesh.io/upstreams: "user" has no =; write NAME=PORT'),
    ({"swiftmesh.io/upstreams": "user=1,user=2"}, {"swiftmesh.io/inject": "true", "app": "web"},
     'swiftmesh.io/upstreams: "user=127.0.0.1:2": user is named twice'),
    ({"swiftmesh.io/app-protocol": "grpc"}, {"swiftmesh.io/inject": "true", "app": "web"},
     'swiftmesh.io/app-protocol: "grpc" is none of auto, http1, http2'),
])
def test_a_pod_that_asks_with_a_mistake_is_refused_with_the_annotation_and_the_fix(webhook, annotations, labels, message):
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "web", "labels": labels, "annotations": annotations},
           "spec": {"containers": [{"name": "web", "image": "web:1", "ports": [{"containerPort": 8080}]}]}}
    response = review(webhook, pod)
    assert response["allowed"] is False and "patch" not in response
    assert response["status"]["code"] == 400
    assert message in response["status"]["message"], response["status"]["message"]


@pytest.mark.parametrize("body, reason", [
    (b"not json", "the body is not a JSON object"),
    (b'{"kind": "Pod"}', "kind: expected AdmissionReview"),
    (b'{"kind": "AdmissionReview", "request": {}}', "request.uid"),
])
def test_what_is_not_an_admission_review_gets_400_with_the_reason(webhook, body, reason):
    control_plane, port = webhook
    done = _post(control_plane, port, body)
    text, status = done.stdout.decode().rsplit("\n", 1)
    assert status == "400"
    assert reason in json.loads(text)["error"]


def test_the_webhook_certificate_names_only_the_service_it_was_given(webhook):
    control_plane, port = webhook
    done = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "--resolve", f"other.example:{port}:127.0.0.1",
         "--cacert", str(control_plane.root_file), "--data-binary", "{}", f"https://other.example:{port}/inject"],
        capture_output=True, timeout=20)
    assert done.returncode == 60, done.stderr  # curl: the peer's certificate does not match the name


class InjectedSidecar(SwiftmeshProcess):
    """The injected container's own arguments and environment, as the kubelet
    would run them: $(POD_IP) is 127.0.0.1, the Secret and ConfigMap are
    the control plane's, and the fixed ports are free ones."""

    def __init__(self, workdir: Path, args: list[str], env: dict[str, str], admin_port: int):
        super().__init__(workdir, "injected-sidecar")
        self.args = args
        self.env.update(env)
        self.admin_port = admin_port

    @property
    def admin(self):
        return "127.0.0.1", self.admin_port

    def command(self):
        return [str(binary_path()), *self.args, *_log_level()]


def test_the_injected_sidecar_joins_the_mesh_with_its_secret_and_root(webhook, mesh, tmp_path):
    control_plane, _ = webhook
    _, bare = demo_pod("user-v1")
    container = [c for c in patched(bare, review(webhook, bare))["spec"]["initContainers"]
                 if c["name"] == "swiftmesh-sidecar"][0]
    inbound, admin, app = free_port(), free_port(), free_port()
    secrets = {"swiftmesh-join-user": {"token": control_plane.join_token("user")}}
    env = {}
    for variable in container["env"]:
        source = variable["valueFrom"]
        if "secretKeyRef" in source:
            reference = source["secretKeyRef"]
            env[variable["name"]] = secrets[reference["name"]][reference["key"]]
        else:
            assert source == {"fieldRef": {"fieldPath": "status.podIP"}}
            env[variable["name"]] = "127.0.0.1"
    args = []
    for arg in container["args"]:
        arg = arg.replace("$(POD_IP)", "127.0.0.1").replace(":15006", f":{inbound}").replace(":15000", f":{admin}")
        arg = arg.replace("0.0.0.0:", "127.0.0.1:").replace("127.0.0.1:50051", f"127.0.0.1:{app}")
        arg = arg.replace("/etc/swiftmesh/ca/root.pem", str(control_plane.root_file))
        arg = arg.replace(WEBHOOK_NAME + ":15010", control_plane.address)
        args.append(arg)
    sidecar = InjectedSidecar(tmp_path / "injected", args, env, admin)
    mesh.processes.append(sidecar)
    mesh.stack.callback(sidecar.stop)
    sidecar.launch()
    wait_until(sidecar._ready, 20, message="the injected sidecar's /ready (its startup probe)")
    status, instances = control_plane.api("GET", "/api/v1/services/user/instances")
    assert status == 200
    assert [(i["address"], i["labels"]) for i in instances["instances"]] == [(f"127.0.0.1:{inbound}", {"version": "v1"})]
