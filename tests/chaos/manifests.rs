//! Checks of the deployment files in `deploy/`: the Kubernetes kustomize base and example
//! overlay, the compose file, the Dockerfile and build script, the systemd unit and configs.
//! Every node configuration they produce is run through the node's own parser and validation
//! (`braid_node::NodeConfig`), and the zone-init script is run with a fake `kubectl`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use braid_node::NodeConfig;
use serde_yaml::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every YAML document of a file.
fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = read(path);
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| {
            serde::Deserialize::deserialize(d)
                .unwrap_or_else(|e| panic!("{}: invalid YAML: {e}", path.display()))
        })
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// The value at a `/`-separated path (numbers index sequences); panics naming the path.
fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    try_at(v, path).unwrap_or_else(|| panic!("missing {path} in {}", describe(v)))
}

fn try_at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('/')
        .filter(|p| !p.is_empty())
        .try_fold(v, |v, p| match p.parse::<usize>() {
            Ok(i) if v.is_sequence() => v.get(i),
            _ => v.get(p),
        })
}

fn s<'a>(v: &'a Value, path: &str) -> &'a str {
    at(v, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path} is not a string in {}", describe(v)))
}

fn seq<'a>(v: &'a Value, path: &str) -> &'a Vec<Value> {
    at(v, path)
        .as_sequence()
        .unwrap_or_else(|| panic!("{path} is not a list in {}", describe(v)))
}

fn describe(v: &Value) -> String {
    match (try_at(v, "kind"), try_at(v, "metadata/name")) {
        (Some(k), Some(n)) => format!(
            "{} {}",
            k.as_str().unwrap_or("?"),
            n.as_str().unwrap_or("?")
        ),
        _ => "a YAML value".into(),
    }
}

/// The labels of `v` at `path` as a map.
fn labels(v: &Value, path: &str) -> BTreeMap<String, String> {
    at(v, path)
        .as_mapping()
        .unwrap_or_else(|| panic!("{path} is not a mapping"))
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap_or_default().to_string(),
                v.as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn selects(selector: &BTreeMap<String, String>, pod: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| pod.get(k) == Some(v))
}

/// Parses a node configuration and runs the node's own validation on it.
fn node_config(toml_text: &str, what: &str) -> NodeConfig {
    let config: NodeConfig = toml::from_str(toml_text)
        .unwrap_or_else(|e| panic!("{what}: not a node config: {e}\n{toml_text}"));
    config
        .validate()
        .unwrap_or_else(|e| panic!("{what}: invalid node config: {e}\n{toml_text}"))
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{addr} has no port"))
}

/// The base's resources by kind (several of a kind possible).
fn k8s_base() -> (Value, BTreeMap<String, Vec<Value>>) {
    let base = root().join("k8s/base");
    let kust = yaml_docs(&base.join("kustomization.yaml")).remove(0);
    assert_eq!(s(&kust, "kind"), "Kustomization");
    let mut by_kind: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in seq(&kust, "resources") {
        let file = base.join(r.as_str().expect("resource path"));
        assert!(
            file.is_file(),
            "kustomization resource {} is missing",
            file.display()
        );
        for doc in yaml_docs(&file) {
            let kind = s(&doc, "kind").to_string();
            assert!(!s(&doc, "apiVersion").is_empty());
            assert!(
                !s(&doc, "metadata/name").is_empty(),
                "{kind} without a name"
            );
            by_kind.entry(kind).or_default().push(doc);
        }
    }
    (kust, by_kind)
}

fn one<'a>(by_kind: &'a BTreeMap<String, Vec<Value>>, kind: &str) -> &'a Value {
    let all = by_kind
        .get(kind)
        .unwrap_or_else(|| panic!("the base has no {kind}"));
    assert_eq!(all.len(), 1, "the base has {} {kind}s", all.len());
    &all[0]
}

#[test]
fn k8s_base_is_complete_and_consistent() {
    let (kust, by_kind) = k8s_base();
    for kind in [
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
        "Service",
        "StatefulSet",
        "PodDisruptionBudget",
    ] {
        assert!(by_kind.contains_key(kind), "the base has no {kind}");
    }
    let namespace = s(&kust, "namespace");
    assert_eq!(s(one(&by_kind, "Namespace"), "metadata/name"), namespace);
    for subject in seq(one(&by_kind, "ClusterRoleBinding"), "subjects") {
        assert_eq!(
            s(subject, "namespace"),
            namespace,
            "ClusterRoleBinding subject namespace"
        );
    }

    // The StatefulSet.
    let sts = one(&by_kind, "StatefulSet");
    assert_eq!(at(sts, "spec/replicas").as_u64(), Some(3), "replicas");
    assert_eq!(
        s(sts, "spec/podManagementPolicy"),
        "Parallel",
        "pods must start together to elect a leader"
    );
    let pod_labels = labels(sts, "spec/template/metadata/labels");
    assert!(selects(
        &labels(sts, "spec/selector/matchLabels"),
        &pod_labels
    ));
    let spread = seq(sts, "spec/template/spec/topologySpreadConstraints");
    let zone_spread = spread
        .iter()
        .find(|c| s(c, "topologyKey") == "topology.kubernetes.io/zone")
        .expect("a topology spread over topology.kubernetes.io/zone");
    assert_eq!(at(zone_spread, "maxSkew").as_u64(), Some(1));
    assert_eq!(s(zone_spread, "whenUnsatisfiable"), "DoNotSchedule");
    assert!(selects(
        &labels(zone_spread, "labelSelector/matchLabels"),
        &pod_labels
    ));
    let pod = at(sts, "spec/template/spec");
    assert_eq!(at(pod, "securityContext/runAsUser").as_u64(), Some(10001));
    assert_eq!(
        at(pod, "securityContext/runAsNonRoot").as_bool(),
        Some(true)
    );
    assert!(
        at(pod, "terminationGracePeriodSeconds")
            .as_u64()
            .unwrap_or(0)
            >= 30
    );

    // Volumes: every mount names a pod volume or a claim template.
    let mut volumes: BTreeSet<String> = seq(pod, "volumes")
        .iter()
        .map(|v| s(v, "name").to_string())
        .collect();
    let claims: Vec<&Value> = seq(sts, "spec/volumeClaimTemplates").iter().collect();
    volumes.extend(claims.iter().map(|c| s(c, "metadata/name").to_string()));
    let containers = seq(pod, "containers");
    let inits = seq(pod, "initContainers");
    for c in containers.iter().chain(inits.iter()) {
        for m in seq(c, "volumeMounts") {
            assert!(
                volumes.contains(s(m, "name")),
                "{} mounts unknown volume {}",
                s(c, "name"),
                s(m, "name")
            );
        }
    }
    let config_map = pod
        .get("volumes")
        .and_then(|v| v.as_sequence())
        .and_then(|v| v.iter().find_map(|v| try_at(v, "configMap/name")))
        .and_then(|n| n.as_str())
        .expect("a configMap volume");
    let generated: Vec<&str> = seq(&kust, "configMapGenerator")
        .iter()
        .map(|g| s(g, "name"))
        .collect();
    assert!(
        generated.contains(&config_map),
        "configMap {config_map} is not generated"
    );
    for g in seq(&kust, "configMapGenerator") {
        for f in seq(g, "files") {
            let file = f
                .as_str()
                .expect("file")
                .rsplit('=')
                .next()
                .expect("file name");
            assert!(
                root().join("k8s/base").join(file).is_file(),
                "configMapGenerator file {file} is missing"
            );
        }
    }

    // The braid container: config, ports, probes, data volume.
    let braid = containers
        .iter()
        .find(|c| s(c, "name") == "braid")
        .expect("a container named braid");
    let base_toml: toml::Table =
        toml::from_str(&read(&root().join("k8s/base/braid.toml"))).expect("base braid.toml");
    let toml_str = |k: &str| {
        base_toml
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("base braid.toml has no {k}"))
            .to_string()
    };
    let ports: BTreeMap<String, u64> = seq(braid, "ports")
        .iter()
        .map(|p| {
            (
                s(p, "name").to_string(),
                at(p, "containerPort").as_u64().expect("port"),
            )
        })
        .collect();
    assert_eq!(
        ports.get("grpc").copied(),
        Some(port_of(&toml_str("listen")) as u64)
    );
    assert_eq!(
        ports.get("health").copied(),
        Some(port_of(&toml_str("health_listen")) as u64)
    );
    assert!(ports.contains_key("kinesis"));
    for (probe, path) in [
        ("readinessProbe", "/health"),
        ("livenessProbe", "/live"),
        ("startupProbe", "/live"),
    ] {
        let p = at(braid, probe);
        assert_eq!(s(p, "httpGet/path"), path, "{probe} path");
        let port = at(p, "httpGet/port");
        let port = port
            .as_u64()
            .or_else(|| port.as_str().and_then(|n| ports.get(n).copied()))
            .unwrap_or_else(|| panic!("{probe} port is not a container port"));
        assert_eq!(
            port, ports["health"],
            "{probe} must ask the health listener"
        );
    }
    let env: BTreeMap<String, String> = seq(braid, "env")
        .iter()
        .filter_map(|e| {
            Some((
                s(e, "name").to_string(),
                e.get("value")?.as_str()?.to_string(),
            ))
        })
        .collect();
    let config_path = env.get("BRAID_CONFIG").expect("BRAID_CONFIG");
    let mounts: Vec<(String, String)> = seq(braid, "volumeMounts")
        .iter()
        .map(|m| (s(m, "name").to_string(), s(m, "mountPath").to_string()))
        .collect();
    assert!(
        mounts
            .iter()
            .any(|(_, p)| config_path.starts_with(&format!("{p}/"))),
        "BRAID_CONFIG {config_path} is not on a mounted volume"
    );
    let data_dir = toml_str("data_dir");
    let data_claim = s(claims[0], "metadata/name");
    assert!(
        mounts
            .iter()
            .any(|(n, p)| n == data_claim && *p == data_dir),
        "the claim {data_claim} must be mounted at data_dir {data_dir}"
    );
    assert_eq!(
        at(braid, "securityContext/readOnlyRootFilesystem").as_bool(),
        Some(true)
    );

    // The zone-init container writes BRAID_CONFIG and learns the node name from the downward API.
    let init = inits
        .iter()
        .find(|c| s(c, "name") == "zone-init")
        .expect("zone-init");
    assert!(seq(init, "env")
        .iter()
        .any(
            |e| try_at(e, "valueFrom/fieldRef/fieldPath").and_then(|v| v.as_str())
                == Some("spec.nodeName")
        ));
    let runtime_dir = Path::new(config_path)
        .parent()
        .expect("dir")
        .to_str()
        .expect("utf-8");
    assert!(seq(init, "volumeMounts")
        .iter()
        .any(|m| s(m, "mountPath") == runtime_dir));

    // Services: a headless one for peers (also before ready), a client one; both select the pods.
    let services = &by_kind["Service"];
    let headless = services
        .iter()
        .find(|v| try_at(v, "spec/clusterIP").and_then(|c| c.as_str()) == Some("None"))
        .expect("a headless Service");
    assert_eq!(s(headless, "metadata/name"), s(sts, "spec/serviceName"));
    assert_eq!(
        at(headless, "spec/publishNotReadyAddresses").as_bool(),
        Some(true)
    );
    assert!(
        services.len() >= 2,
        "a client Service besides the headless one"
    );
    for svc in services {
        assert!(
            selects(&labels(svc, "spec/selector"), &pod_labels),
            "{} selects no pod",
            describe(svc)
        );
        for p in seq(svc, "spec/ports") {
            let target = s(p, "targetPort");
            assert!(
                ports.contains_key(target),
                "{} targets unknown port {target}",
                describe(svc)
            );
        }
    }

    // The PodDisruptionBudget.
    let pdb = one(&by_kind, "PodDisruptionBudget");
    assert_eq!(
        at(pdb, "spec/maxUnavailable").as_u64(),
        Some(1),
        "maxUnavailable"
    );
    assert!(selects(
        &labels(pdb, "spec/selector/matchLabels"),
        &pod_labels
    ));
}

/// Resolves a JSON pointer against a YAML value.
fn pointer<'a>(v: &'a Value, ptr: &str) -> Option<&'a Value> {
    try_at(v, ptr)
}

#[test]
fn k8s_example_overlay_matches_the_base() {
    let (_, by_kind) = k8s_base();
    let sts = one(&by_kind, "StatefulSet");
    let overlay = yaml_docs(&root().join("k8s/overlays/example/kustomization.yaml")).remove(0);
    for r in seq(&overlay, "resources") {
        let dir = root()
            .join("k8s/overlays/example")
            .join(r.as_str().expect("path"));
        assert!(
            dir.join("kustomization.yaml").is_file(),
            "{} is not a kustomization",
            dir.display()
        );
    }
    // Image names are matched by name without tag: each must be one the base uses.
    let used: BTreeSet<String> = seq(sts, "spec/template/spec/containers")
        .iter()
        .chain(seq(sts, "spec/template/spec/initContainers"))
        .map(|c| s(c, "image").split(':').next().expect("image").to_string())
        .collect();
    for i in seq(&overlay, "images") {
        assert!(
            used.contains(s(i, "name")),
            "overlay image {} is not used by the base ({used:?})",
            s(i, "name")
        );
    }
    // Every JSON patch op addresses something that exists (replace) or whose parent exists (add).
    let mut ops = 0;
    for p in seq(&overlay, "patches") {
        assert_eq!(s(p, "target/kind"), "StatefulSet");
        let patch: Vec<Value> = serde_yaml::from_str(s(p, "patch")).expect("patch is a YAML list");
        for op in patch {
            let path = s(&op, "path");
            let found = match s(&op, "op") {
                "replace" | "remove" => pointer(sts, path).is_some(),
                "add" => pointer(sts, path.rsplit_once('/').expect("parent").0).is_some(),
                other => panic!("unexpected op {other}"),
            };
            assert!(
                found,
                "overlay patch {path} does not match the base StatefulSet"
            );
            ops += 1;
        }
    }
    assert!(
        ops >= 3,
        "the example sets storage class, size and resources"
    );
    // TLS: the Secret's volume is mounted into the braid container and the two variables
    // `braid node` reads (BRAID_KINESIS_TLS_CERT/KEY) point at files inside that mount.
    let ops: Vec<Value> = seq(&overlay, "patches")
        .iter()
        .flat_map(|p| serde_yaml::from_str::<Vec<Value>>(s(p, "patch")).expect("patch"))
        .collect();
    let value_at = |path: &str| -> Vec<&Value> {
        ops.iter()
            .filter(|o| s(o, "path") == path)
            .map(|o| at(o, "value"))
            .collect()
    };
    let secret_volume = value_at("/spec/template/spec/volumes/-")
        .into_iter()
        .find(|v| try_at(v, "secret/secretName").is_some())
        .expect("the example mounts a TLS Secret");
    let mount = value_at("/spec/template/spec/containers/0/volumeMounts/-")
        .into_iter()
        .find(|m| s(m, "name") == s(secret_volume, "name"))
        .expect("the TLS volume is mounted into the braid container");
    let env = value_at("/spec/template/spec/containers/0/env/-");
    for var in ["BRAID_KINESIS_TLS_CERT", "BRAID_KINESIS_TLS_KEY"] {
        let e = env
            .iter()
            .find(|e| s(e, "name") == var)
            .unwrap_or_else(|| panic!("the example sets {var}"));
        assert!(
            s(e, "value").starts_with(&format!("{}/", s(mount, "mountPath"))),
            "{var} points outside the TLS mount"
        );
    }
    let claim = &seq(sts, "spec/volumeClaimTemplates")[0];
    assert!(try_at(claim, "spec/resources/requests/storage").is_some());
    assert_eq!(
        s(&seq(sts, "spec/template/spec/containers")[0], "name"),
        "braid"
    );
}

/// Runs zone-init.sh with a fake kubectl: pods `braid-0..2` on nodes `n0..n2`, whose zones are
/// `zones[i]` (None: the pod is not scheduled).
fn zone_init(dir: &Path, pod: &str, zones: [Option<&str>; 3]) -> std::process::Output {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let kubectl = bin.join("kubectl");
    // Answers `get pod -n NS NAME -o jsonpath=...` and `get node NAME -o jsonpath=...`.
    std::fs::write(
        &kubectl,
        "#!/bin/sh\ncase \"$2\" in\n  pod) eval \"printf %s \\\"\\$FAKE_POD_$(echo \"$5\" | tr - _)\\\"\" ;;\n  node) eval \"printf %s \\\"\\$FAKE_ZONE_$3\\\"\" ;;\n  *) exit 1 ;;\nesac\n",
    )
    .expect("write fake kubectl");
    let mut perms = std::fs::metadata(&kubectl).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&kubectl, perms).expect("chmod");
    let ordinal: usize = pod
        .rsplit('-')
        .next()
        .expect("ordinal")
        .parse()
        .expect("ordinal");
    let mut cmd = Command::new("sh");
    cmd.arg(root().join("k8s/base/zone-init.sh"))
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("POD_NAME", pod)
        .env("POD_NAMESPACE", "braid")
        .env("NODE_NAME", format!("n{ordinal}"))
        .env("BRAID_ZONE_INIT_BASE", root().join("k8s/base/braid.toml"))
        .env("BRAID_ZONE_INIT_CACHE", dir.join("peers.toml"))
        .env("BRAID_ZONE_INIT_OUT", dir.join("braid.toml"));
    for (i, z) in zones.iter().enumerate() {
        if let Some(z) = z {
            cmd.env(format!("FAKE_POD_braid_{i}"), format!("n{i}"));
            cmd.env(format!("FAKE_ZONE_n{i}"), z);
        }
    }
    // The script polls unscheduled pods forever; cut it short.
    cmd.env("REPLICAS", "3");
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run sh");
    wait_output(child, std::time::Duration::from_secs(20))
}

fn wait_output(
    mut child: std::process::Child,
    timeout: std::time::Duration,
) -> std::process::Output {
    let started = std::time::Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn k8s_zone_init_writes_a_valid_node_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = zone_init(
        dir.path(),
        "braid-1",
        [Some("eu-1a"), Some("eu-1b"), Some("eu-1c")],
    );
    assert!(
        out.status.success(),
        "zone-init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = read(&dir.path().join("braid.toml"));
    let c = node_config(&text, "zone-init output");
    assert_eq!((c.node_id, c.zone.as_str()), (2, "eu-1b"));
    let zones: Vec<&str> = c.peers.iter().map(|p| p.zone.as_str()).collect();
    assert_eq!(zones, ["eu-1a", "eu-1b", "eu-1c"]);
    assert_eq!(
        c.peers[0].addr,
        "braid-0.braid-peers.braid.svc.cluster.local:7401"
    );
    assert_eq!(
        c.advertise.as_deref(),
        Some("braid-1.braid-peers.braid.svc.cluster.local:7401")
    );

    // A restart uses the peer list on its volume: it does not wait for peers to be scheduled.
    let out = zone_init(dir.path(), "braid-1", [None, Some("eu-1b"), None]);
    assert!(
        out.status.success(),
        "zone-init with a cached peer list failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(read(&dir.path().join("braid.toml")), text);

    // Two pods in one zone: refused.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = zone_init(
        dir.path(),
        "braid-0",
        [Some("eu-1a"), Some("eu-1a"), Some("eu-1c")],
    );
    assert!(
        !out.status.success(),
        "zone-init accepted two pods in one zone"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("one pod per zone"));
    assert!(!dir.path().join("braid.toml").exists());
}

/// `${VAR:-default}` with the defaults (the environment of the test is not consulted).
fn substitute_defaults(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closing brace") + start;
        let inner = &rest[start + 2..end];
        let (_, default) = inner
            .split_once(":-")
            .unwrap_or_else(|| panic!("${{{inner}}} has no default"));
        out.push_str(default);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn compose_file_is_three_zones_that_can_be_cut_apart() {
    let dir = root().join("compose");
    let mut compose: Value =
        serde_yaml::from_str(&substitute_defaults(&read(&dir.join("compose.yaml"))))
            .expect("compose.yaml");
    compose.apply_merge().expect("compose.yaml merge keys");
    let shared: toml::Table =
        toml::from_str(&read(&dir.join("braid.toml"))).expect("compose braid.toml");
    let networks = at(&compose, "networks");
    assert_eq!(
        at(networks, "interzone/internal").as_bool(),
        Some(true),
        "interzone must be internal"
    );
    let mut interzone_ips = BTreeMap::new();
    let mut host_ports = BTreeSet::new();
    let mut configs = Vec::new();
    for (i, zone) in ["a", "b", "c"].iter().enumerate() {
        let svc = at(&compose, &format!("services/braid-{zone}"));
        let nets = at(svc, "networks").as_mapping().expect("networks");
        let names: BTreeSet<&str> = nets.keys().filter_map(|k| k.as_str()).collect();
        let own = format!("zone-{zone}");
        assert_eq!(
            names,
            BTreeSet::from([own.as_str(), "interzone"]),
            "braid-{zone} networks"
        );
        assert!(
            try_at(networks, &format!("{own}/internal")).is_none(),
            "{own} must reach the host"
        );
        let ip = s(svc, "networks/interzone/ipv4_address").to_string();
        // Ports on loopback only, gRPC 7401-7403 and Kinesis 4567-4569.
        let ports: Vec<&str> = seq(svc, "ports")
            .iter()
            .map(|p| p.as_str().expect("port"))
            .collect();
        assert_eq!(
            ports,
            [
                format!("127.0.0.1:{}:7401", 7401 + i),
                format!("127.0.0.1:{}:4567", 4567 + i)
            ]
        );
        host_ports.extend(ports.iter().map(|p| p.to_string()));
        assert_eq!(
            seq(svc, "healthcheck/test")
                .iter()
                .map(|v| v.as_str().unwrap_or(""))
                .collect::<Vec<_>>(),
            ["CMD", "/usr/local/bin/braid", "node", "--probe"]
        );
        assert!(seq(svc, "volumes")
            .iter()
            .any(|v| v.as_str().unwrap_or("").ends_with(":/var/lib/braid")));
        // The effective node configuration: the shared file, then the service's BRAID_* vars.
        let env = at(svc, "environment");
        let mut table = shared.clone();
        let var = |k: &str| try_at(env, k).and_then(|v| v.as_str()).map(String::from);
        table.insert(
            "node_id".into(),
            toml::Value::Integer(var("BRAID_NODE_ID").expect("id").parse().expect("id")),
        );
        table.insert("zone".into(), var("BRAID_ZONE").expect("zone").into());
        table.insert(
            "advertise".into(),
            var("BRAID_ADVERTISE").expect("advertise").into(),
        );
        let peers: Vec<toml::Value> = var("BRAID_PEERS")
            .expect("peers")
            .split(',')
            .map(|p| {
                let f: Vec<&str> = p.splitn(3, '=').collect();
                let mut t = toml::Table::new();
                t.insert(
                    "id".into(),
                    toml::Value::Integer(f[0].parse().expect("peer id")),
                );
                t.insert("zone".into(), f[1].into());
                t.insert("addr".into(), f[2].into());
                toml::Value::Table(t)
            })
            .collect();
        table.insert("peers".into(), toml::Value::Array(peers));
        assert_eq!(var("BRAID_KINESIS_LISTEN").as_deref(), Some("0.0.0.0:4567"));
        assert_eq!(
            var("BRAID_CONFIG").as_deref(),
            Some("/etc/braid/braid.toml")
        );
        let c = node_config(
            &toml::to_string(&table).expect("toml"),
            &format!("braid-{zone}"),
        );
        assert_eq!(c.zone, format!("az-{zone}"));
        assert_eq!(c.advertise.as_deref(), Some(format!("{ip}:7401").as_str()));
        interzone_ips.insert(c.node_id, ip);
        configs.push(c);
    }
    // Peers are addressed by their static inter-zone IPs, the same list on every node.
    for c in &configs {
        assert_eq!(c.peers, configs[0].peers);
        for p in &c.peers {
            assert_eq!(
                p.addr,
                format!("{}:7401", interzone_ips[&p.id]),
                "peer {} address",
                p.id
            );
        }
        assert_eq!(c.health_listen.as_deref(), Some("0.0.0.0:8080"));
    }
    assert_eq!(host_ports.len(), 6);
}

#[test]
fn dockerfile_and_build_script_keep_the_image_contract() {
    let dockerfile = read(&root().join("Dockerfile"));
    let lines: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    let instr = |name: &str| -> Vec<&str> {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix(name).map(str::trim))
            .collect()
    };
    assert_eq!(
        instr("FROM "),
        ["scratch"],
        "no base image: nothing can be pulled"
    );
    assert_eq!(instr("USER "), ["10001:10001"]);
    assert_eq!(instr("STOPSIGNAL "), ["SIGTERM"]);
    assert_eq!(instr("VOLUME "), ["[\"/var/lib/braid\"]"]);
    assert!(dockerfile.contains("BRAID_DATA_DIR=/var/lib/braid"));
    assert!(dockerfile.contains("BRAID_HEALTH_LISTEN=0.0.0.0:8080"));
    assert!(dockerfile.contains("CMD [\"/usr/local/bin/braid\", \"node\", \"--probe\"]"));
    let expose: Vec<&str> = instr("EXPOSE ")
        .iter()
        .flat_map(|e| e.split_whitespace())
        .collect();
    for p in ["7401", "4567", "8080"] {
        assert!(expose.contains(&p), "EXPOSE {p}");
    }
    let script = read(&root().join("build-image.sh"));
    assert!(script.contains("target-feature=+crt-static"));
    assert!(script.contains("--target \"$target\""));
    assert!(script.contains("target=x86_64-unknown-linux-gnu"));
    assert!(script.contains("braid:local"));
}

#[test]
fn systemd_unit_and_host_configs() {
    let dir = root().join("systemd");
    let unit = read(&dir.join("braid.service"));
    let keys: BTreeMap<&str, Vec<&str>> = unit
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .fold(BTreeMap::new(), |mut m, (k, v)| {
            m.entry(k.trim()).or_default().push(v.trim());
            m
        });
    let one = |k: &str| keys.get(k).and_then(|v| v.last()).copied().unwrap_or("");
    assert_eq!(one("User"), "braid");
    assert_eq!(
        one("ExecStart"),
        "/usr/local/bin/braid node --config /etc/braid/braid.toml"
    );
    assert_eq!(one("KillSignal"), "SIGTERM");
    assert_eq!(one("StateDirectory"), "braid");
    for (k, v) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("MemoryDenyWriteExecute", "yes"),
    ] {
        assert!(keys.contains_key(k), "{k} is not set");
        assert_eq!(one(k), v, "{k}");
    }
    let mut configs = Vec::new();
    for n in ["a", "b", "c"] {
        let c = node_config(
            &read(&dir.join(format!("braid-{n}.toml"))),
            &format!("braid-{n}.toml"),
        );
        assert_eq!(c.zone, format!("az-{n}"));
        assert_eq!(
            c.data_dir,
            PathBuf::from("/var/lib/braid"),
            "data_dir is the unit's StateDirectory"
        );
        assert!(c.health_listen.is_some());
        configs.push(c);
    }
    for c in &configs {
        assert_eq!(c.peers, configs[0].peers, "every host lists the same peers");
    }
}
