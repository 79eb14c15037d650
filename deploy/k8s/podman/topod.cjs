// Turns the rendered manifests (kubectl kustomize deploy/k8s/base) into what
// `podman kube play` (podman 4.3) runs: it plays Pods, Deployments,
// PersistentVolumeClaims and ConfigMaps, and ignores StatefulSets, DaemonSets,
// Services and NetworkPolicies. So:
//   - the NAS StatefulSet becomes the Pod PREFIX-nas with a PVC PREFIX-data;
//   - the manager Deployment becomes the Pod PREFIX-manager;
//   - the agent DaemonSet becomes one Pod per node given (PREFIX-agent-N),
//     with CKPT_NODE set to the node's name instead of spec.nodeName and no
//     CKPT_ADVERTISE (status.podIP does not exist there: the agent listens on
//     every interface and the manager dials the address of its connection,
//     which is the pod's);
//   - with no Services, the ConfigMaps name the pods (PREFIX-nas,
//     PREFIX-manager), which podman's network DNS resolves;
//   - every name takes the PREFIX (podman makes a volume of each ConfigMap
//     mounted as one, under the ConfigMap's name);
//   - probes are dropped (podman runs them as healthchecks on systemd timers)
//     and container ports are not declared (podman 4.3 would publish every
//     one on the host, where the pods' ports collide).
// Everything else (image, args, envFrom, the component specs' ConfigMap
// volume, emptyDirs, securityContext, resources) is played as rendered.
//   node topod.cjs MODULES_DIR PREFIX IMAGE NODE[=CKPT_VAR=VALUE,...]... < rendered.yaml
// A NODE may carry extra settings for its agent: dummy_1=CKPT_DEMO=demo_1:256K,...
"use strict";
const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");

const [modules, prefix, image, ...nodes] = process.argv.slice(2);
if (!modules || !prefix || !image || nodes.length === 0) {
	console.error("usage: node topod.cjs MODULES_DIR PREFIX IMAGE NODE[=VAR=VALUE,...]... < rendered.yaml");
	process.exit(2);
}
const YAML = createRequire(path.join(path.resolve(modules), "package.json"))("yaml");
const objs = YAML.parseAllDocuments(fs.readFileSync(0, "utf8")).map((d) => d.toJS()).filter(Boolean);
const find = (kind, name) => {
	const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
	if (!o) throw new Error(`the render has no ${kind} ${name}`);
	return o;
};
const out = [];

for (const cm of objs.filter((o) => o.kind === "ConfigMap")) {
	const c = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: `${prefix}-${cm.metadata.name}` }, data: { ...cm.data } };
	if (c.data.CKPT_NAS) c.data.CKPT_NAS = `tcp://${prefix}-nas:7410`;
	if (c.data.CKPT_MANAGER) c.data.CKPT_MANAGER = `tcp://${prefix}-manager:7420`;
	out.push(c);
}

function pod(name, template, extraVolumes, editContainer) {
	const spec = JSON.parse(JSON.stringify(template.spec));
	for (const c of spec.containers) {
		c.image = image;
		delete c.ports;
		delete c.startupProbe;
		delete c.livenessProbe;
		delete c.readinessProbe;
		for (const e of c.envFrom || []) if (e.configMapRef) e.configMapRef.name = `${prefix}-${e.configMapRef.name}`;
		if (editContainer) editContainer(c);
	}
	for (const v of spec.volumes || []) if (v.configMap) v.configMap.name = `${prefix}-${v.configMap.name}`;
	spec.volumes = [...(spec.volumes || []), ...extraVolumes];
	spec.restartPolicy = "Never";
	return { apiVersion: "v1", kind: "Pod", metadata: { name, labels: template.metadata.labels }, spec };
}

const nas = find("StatefulSet", "ckpt-nas");
const claim = nas.spec.volumeClaimTemplates[0];
out.push({
	apiVersion: "v1", kind: "PersistentVolumeClaim",
	metadata: { name: `${prefix}-data` },
	spec: { accessModes: claim.spec.accessModes, resources: claim.spec.resources },
});
out.push(pod(`${prefix}-nas`, nas.spec.template,
	[{ name: claim.metadata.name, persistentVolumeClaim: { claimName: `${prefix}-data` } }]));
out.push(pod(`${prefix}-manager`, find("Deployment", "ckpt-manager").spec.template, []));
const agent = find("DaemonSet", "ckpt-agent");
nodes.forEach((arg, i) => {
	const [node, ...rest] = arg.split("=");
	const extra = rest.join("=").split(",").filter(Boolean).map((kv) => {
		const [name, ...v] = kv.split("=");
		return { name, value: v.join("=") };
	});
	out.push(pod(`${prefix}-agent-${i + 1}`, agent.spec.template, [], (c) => {
		c.env = (c.env || []).filter((e) => !["CKPT_NODE", "POD_IP", "CKPT_ADVERTISE"].includes(e.name));
		c.env.unshift({ name: "CKPT_NODE", value: node });
		c.env.push(...extra);
	}));
});
process.stdout.write(out.map((o) => YAML.stringify(o)).join("---\n"));
