#!/bin/sh
# zone-init: writes this pod's Braid configuration before the node starts.
#
# Braid's membership is static: every node's config lists every node with its zone, and the
# zones must be distinct. A pod's zone is the topology.kubernetes.io/zone label of the
# Kubernetes node it is scheduled on, known only after scheduling, so this script waits until
# every pod of the StatefulSet is scheduled, reads the zone of each one's node, and writes
# /etc/braid-runtime/braid.toml. The peer list is then kept on the pod's volume: a pod's volume
# is zonal, so its zone never changes, and a later restart must not wait for a peer that is
# down or unschedulable at that moment.
#
# Needs: sh, kubectl, a service account that may get pods (namespace) and nodes (cluster).
# Environment: POD_NAME, POD_NAMESPACE, NODE_NAME (downward API), REPLICAS, PEER_SERVICE,
# CLUSTER_DOMAIN, GRPC_PORT; BRAID_ZONE_INIT_BASE/CACHE/OUT move the files (for tests).
set -eu
: "${POD_NAME:?}" "${POD_NAMESPACE:?}" "${NODE_NAME:?}"
REPLICAS="${REPLICAS:-3}"
PEER_SERVICE="${PEER_SERVICE:-braid-peers}"
CLUSTER_DOMAIN="${CLUSTER_DOMAIN:-cluster.local}"
GRPC_PORT="${GRPC_PORT:-7401}"
SET="${POD_NAME%-*}"
ORDINAL="${POD_NAME##*-}"
NODE_ID=$((ORDINAL + 1))
BASE="${BRAID_ZONE_INIT_BASE:-/etc/braid/braid.toml}"
CACHE="${BRAID_ZONE_INIT_CACHE:-/var/lib/braid/peers.toml}"
OUT="${BRAID_ZONE_INIT_OUT:-/etc/braid-runtime/braid.toml}"

zone_of_node() {
  kubectl get node "$1" -o 'jsonpath={.metadata.labels.topology\.kubernetes\.io/zone}'
}

MY_ZONE="$(zone_of_node "$NODE_NAME")"
[ -n "$MY_ZONE" ] || { echo "zone-init: node $NODE_NAME has no topology.kubernetes.io/zone label" >&2; exit 1; }

if [ ! -s "$CACHE" ]; then
  tmp="$CACHE.tmp"
  : > "$tmp"
  i=0
  while [ "$i" -lt "$REPLICAS" ]; do
    pod="$SET-$i"
    node=""
    while [ -z "$node" ]; do
      node="$(kubectl get pod -n "$POD_NAMESPACE" "$pod" -o 'jsonpath={.spec.nodeName}' 2>/dev/null || true)"
      [ -n "$node" ] || { echo "zone-init: waiting for $pod to be scheduled"; sleep 2; }
    done
    zone="$(zone_of_node "$node")"
    [ -n "$zone" ] || { echo "zone-init: node $node of $pod has no zone label" >&2; exit 1; }
    printf '[[peers]]\nid = %s\nzone = "%s"\naddr = "%s.%s.%s.svc.%s:%s"\n\n' \
      "$((i + 1))" "$zone" "$pod" "$PEER_SERVICE" "$POD_NAMESPACE" "$CLUSTER_DOMAIN" "$GRPC_PORT" >> "$tmp"
    i=$((i + 1))
  done
  zones=$(( $(grep "^zone" "$tmp" | sort -u | wc -l) ))
  [ "$zones" -eq "$REPLICAS" ] || {
    echo "zone-init: the $REPLICAS pods span $zones zones; Braid needs one pod per zone:" >&2
    cat "$tmp" >&2
    exit 1
  }
  mv "$tmp" "$CACHE"
fi

grep -q "zone = \"$MY_ZONE\"" "$CACHE" || {
  echo "zone-init: this pod now runs in $MY_ZONE, but its peer list says otherwise:" >&2
  cat "$CACHE" >&2
  exit 1
}
{
  cat "$BASE"
  printf '\nnode_id = %s\nzone = "%s"\nadvertise = "%s.%s.%s.svc.%s:%s"\n\n' \
    "$NODE_ID" "$MY_ZONE" "$POD_NAME" "$PEER_SERVICE" "$POD_NAMESPACE" "$CLUSTER_DOMAIN" "$GRPC_PORT"
  cat "$CACHE"
} > "$OUT"
echo "zone-init: node $NODE_ID in $MY_ZONE"
cat "$OUT"
