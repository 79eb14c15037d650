// Validates rendered Kubernetes manifests offline (no cluster, no network):
//   node validate.cjs MODULES_DIR FILE.yaml...      (FILE "-" reads stdin)
// MODULES_DIR holds node_modules with the versions of package-lock.json
// (install.sh puts them there). For every object:
//   - its apiVersion and kind exist in kubernetes-models (the Kubernetes
//     OpenAPI schema as JSON Schema), and the object passes that schema:
//     types, formats (quantities, int32...), required fields;
//   - no field is unknown to the schema (a typo such as `imagePullPolicyy`
//     would be dropped by the API server without a word): while the schema's
//     validator runs, every field it reads is recorded; a field it never
//     looked at is not in the schema;
// and across the objects: a workload's selector matches its pod template, a
// Service selects some pod, every ConfigMap a pod refers to is rendered, and
// every probe's named port is declared.
// Prints one line per object and per failed check, and "N passed, N failed".
// Exit 0 when all pass, 1 otherwise, 2 on usage errors.
"use strict";
const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");

if (process.argv.length < 4) {
	console.error("usage: node validate.cjs MODULES_DIR FILE.yaml...");
	process.exit(2);
}
const req = createRequire(path.join(path.resolve(process.argv[2]), "package.json"));
const YAML = req("yaml");

let passed = 0, failed = 0;
function report(ok, what, why) {
	if (ok) passed++; else failed++;
	console.log(`${ok ? "ok  " : "FAIL"} ${what}${why ? ": " + why : ""}`);
}

// The kubernetes-models class for apiVersion and kind, or an error string.
function modelFor(apiVersion, kind) {
	if (typeof apiVersion !== "string" || typeof kind !== "string")
		return "apiVersion and kind are required";
	const mod = "kubernetes-models/" + apiVersion; // "v1", "apps/v1", "networking.k8s.io/v1"
	let m;
	try {
		m = req(mod);
	} catch (e) {
		return `apiVersion ${apiVersion} is not in kubernetes-models`;
	}
	if (typeof m[kind] !== "function" || typeof m[kind].prototype.validate !== "function")
		return `kind ${kind} is not in ${apiVersion}`;
	return m[kind];
}

// A copy of value whose objects record the fields read from them.
function tracked(value, where, nodes) {
	if (value === null || typeof value !== "object") return value;
	const read = new Set();
	let copy;
	if (Array.isArray(value)) {
		copy = value.map((v, i) => tracked(v, `${where}/${i}`, nodes));
	} else {
		copy = {};
		for (const [k, v] of Object.entries(value)) copy[k] = tracked(v, `${where}/${k}`, nodes);
		nodes.push({ where, keys: Object.keys(value), read });
	}
	return new Proxy(copy, {
		get(t, k, r) {
			if (typeof k === "string") read.add(k);
			return Reflect.get(t, k, r);
		},
	});
}

function validateOne(obj) {
	const Model = modelFor(obj.apiVersion, obj.kind);
	if (typeof Model === "string") return [Model];
	const nodes = [];
	try {
		// The model's validate() runs the schema's validator on `this`.
		Model.prototype.validate.call(tracked(obj, "", nodes));
	} catch (e) {
		return [String(e.message || e)];
	}
	const unknown = [];
	for (const n of nodes)
		for (const k of n.keys) if (!n.read.has(k)) unknown.push(`${n.where}/${k}: unknown field`);
	return unknown;
}

function podTemplate(o) {
	if (["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"].includes(o.kind))
		return o.spec && o.spec.template;
	if (o.kind === "Pod") return o;
	return null;
}

function matches(selector, labels) {
	return Object.entries(selector || {}).every(([k, v]) => (labels || {})[k] === v);
}

function crossChecks(objs) {
	const name = (o) => `${o.apiVersion}/${o.kind} ${o.metadata.namespace ? o.metadata.namespace + "/" : ""}${o.metadata.name}`;
	const configMaps = new Set(objs.filter((o) => o.kind === "ConfigMap").map((o) => o.metadata.name));
	const templates = objs.map(podTemplate).filter(Boolean);
	for (const o of objs) {
		const t = podTemplate(o);
		if (t && o.kind !== "Pod") {
			const sel = (o.spec.selector && o.spec.selector.matchLabels) || {};
			report(Object.keys(sel).length > 0 && matches(sel, t.metadata && t.metadata.labels),
				`${name(o)}: selector matches its pod template`);
		}
		if (t) {
			const spec = t.spec || {};
			const refs = [];
			for (const c of [...(spec.containers || []), ...(spec.initContainers || [])]) {
				for (const e of c.envFrom || []) if (e.configMapRef) refs.push(e.configMapRef.name);
				for (const e of c.env || [])
					if (e.valueFrom && e.valueFrom.configMapKeyRef) refs.push(e.valueFrom.configMapKeyRef.name);
				const ports = new Set((c.ports || []).map((p) => p.name));
				for (const p of ["startupProbe", "livenessProbe", "readinessProbe"]) {
					const probe = c[p];
					const port = probe && (probe.httpGet || probe.tcpSocket || {}).port;
					if (typeof port === "string")
						report(ports.has(port), `${name(o)}: ${c.name} ${p} port ${port} is declared`);
				}
			}
			for (const v of spec.volumes || []) if (v.configMap) refs.push(v.configMap.name);
			for (const r of refs) report(configMaps.has(r), `${name(o)}: ConfigMap ${r} is rendered`);
		}
		if (o.kind === "Service" && o.spec && o.spec.selector)
			report(templates.some((t) => matches(o.spec.selector, t.metadata && t.metadata.labels)),
				`${name(o)}: selects a pod template`);
	}
}

const objs = [];
for (const file of process.argv.slice(3)) {
	const text = fs.readFileSync(file === "-" ? 0 : file, "utf8");
	for (const doc of YAML.parseAllDocuments(text)) {
		if (doc.errors.length) {
			report(false, `${file}: YAML`, doc.errors.map((e) => e.message).join("; "));
			continue;
		}
		const o = doc.toJS();
		if (o === null) continue;
		const md = (o && o.metadata) || {};
		const what = `${o.apiVersion}/${o.kind} ${md.namespace ? md.namespace + "/" : ""}${md.name}`;
		const errs = validateOne(o);
		report(errs.length === 0, what, errs.join("; "));
		if (errs.length === 0) objs.push(o);
	}
}
if (objs.length === 0) report(false, "no object to validate");
crossChecks(objs);
console.log(`validate: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
