#!/usr/bin/env bash
# Prepares a namespace for sidecars, after the control plane runs
# (kubectl apply -f 00-namespaces.yaml -f 10-etcd.yaml -f 20-control-plane.yaml):
#   - the injection webhook's caBundle: the mesh's root, which signs the webhook's certificate;
#   - ConfigMap swiftmesh-ca-root (key root.pem) in NAMESPACE: the root sidecars check the control plane with;
#   - Secret swiftmesh-join-SERVICE (key token) in NAMESPACE for each SERVICE: its sidecars' join token (a year).
# Run again at will: it replaces what it made (older tokens stay valid until they expire).
# Usage: deploy/kubernetes/bootstrap.sh [NAMESPACE [SERVICE...]]
#   default: swiftmesh-demo user alive gateway (the services of 30-demo.yaml)
set -euo pipefail

NAMESPACE="${1:-swiftmesh-demo}"
shift || true
SERVICES=("$@")
if [ "${#SERVICES[@]}" -eq 0 ]; then SERVICES=(user alive gateway); fi

# The CLI inside a control-plane pod reaches its HTTP API on 127.0.0.1 and
# finds the admin token in its working directory.
CONTROL_PLANE=(kubectl -n swiftmesh-system exec deploy/swiftmesh-control-plane -c control-plane -- swiftmesh)

kubectl -n swiftmesh-system rollout status deploy/swiftmesh-control-plane --timeout=300s
ROOT="$("${CONTROL_PLANE[@]}" get ca)"

CA_BUNDLE="$(printf '%s\n' "$ROOT" | base64 | tr -d '\n')"
kubectl patch mutatingwebhookconfiguration swiftmesh-sidecar-injector --type=json \
  -p "[{\"op\":\"add\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$CA_BUNDLE\"}]"

kubectl -n "$NAMESPACE" create configmap swiftmesh-ca-root --from-literal=root.pem="$ROOT" \
  --dry-run=client -o yaml | kubectl apply -f -

for service in "${SERVICES[@]}"; do
  token="$("${CONTROL_PLANE[@]}" token create --service "$service" --ttl 8760h)"
  kubectl -n "$NAMESPACE" create secret generic "swiftmesh-join-$service" --from-literal=token="$token" \
    --dry-run=client -o yaml | kubectl apply -f -
done
echo "bootstrap.sh: $NAMESPACE is ready for the sidecars of: ${SERVICES[*]}"
