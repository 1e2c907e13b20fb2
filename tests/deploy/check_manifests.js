#!/usr/bin/env node
// Offline check of the Kubernetes manifests in deploy/k8s (no cluster, no
// kubectl): renders the base and every overlay with the small subset of
// kustomize they use, validates every object against the Kubernetes schemas
// (kubernetes-models) and, because those schemas ignore unknown fields,
// reports any field the schema does not define. Then checks what the
// manifests promise about Lotse: flags the binaries really define, probes
// on the health-only port, references that resolve,
// hardened containers, the event wiring of tools/lotse.sh, and network
// policies that allow exactly the calls the services make.
//
// Usage (ctest runs it as deploy.manifests):
//   node tests/deploy/check_manifests.js --root=DIR --bin=lotse_identity=PATH ...
//   ... --kubectl   also compare each rendering with `kubectl kustomize`
'use strict';

const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const YAML = require('yaml');

// ---------------------------------------------------------------- arguments
const opts = { root: path.resolve(__dirname, '../..'), bins: {}, kubectl: false };
for (const arg of process.argv.slice(2)) {
  let m;
  if ((m = arg.match(/^--root=(.+)$/))) opts.root = path.resolve(m[1]);
  else if ((m = arg.match(/^--bin=([^=]+)=(.+)$/))) opts.bins[m[1]] = m[2];
  else if (arg === '--kubectl') opts.kubectl = true;
  else { console.error(`unknown argument ${arg}`); process.exit(2); }
}
const ROOT = opts.root;
const K8S = path.join(ROOT, 'deploy/k8s');
const SERVICES = ['identity', 'cases', 'courses', 'placement'];
// Secrets ops create outside git (certificates, database passwords). Each
// must be documented in README.md; any other reference must resolve.
const OPERATOR_SECRETS = SERVICES.flatMap((s) => [
  `lotse-${s}-server-tls`, `lotse-${s}-client-tls`, `lotse-db-${s}`]).concat(['lotse-tls-crl']);

let passed = 0;
const failures = [];
function check(ok, what) {
  if (ok) passed++;
  else failures.push(what);
  return ok;
}

// ------------------------------------------------------------------- YAML
// kubectl reads YAML 1.1 (0440 is octal, yes/no are booleans); so do we.
function parseYamlFile(file) {
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'), { version: '1.1' });
  const out = [];
  for (const doc of docs) {
    for (const e of doc.errors) throw new Error(`${file}: ${e.message}`);
    const value = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

// ------------------------------------------------ the kustomize we use
// Supported: resources (files and directories), namespace,
// configMapGenerator (files), patches (inline JSON 6902 with a target, or a
// `$patch: delete` document), replicas, images. Anything else is an error,
// so a manifest change that needs more fails here instead of being ignored.
const CLUSTER_SCOPED = new Set(['Namespace', 'PersistentVolume', 'ClusterRole',
  'ClusterRoleBinding', 'StorageClass', 'PriorityClass']);
const KUSTOMIZATION_KEYS = new Set(['apiVersion', 'kind', 'namespace', 'resources',
  'configMapGenerator', 'patches', 'replicas', 'images']);

function decodePointer(p) {
  return p.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function applyJsonPatch(doc, ops, where) {
  for (const op of ops) {
    const keys = decodePointer(op.path);
    const last = keys.pop();
    let parent = doc;
    for (const k of keys) {
      if (parent === undefined || parent === null || !(k in parent)) {
        throw new Error(`${where}: path ${op.path} does not exist`);
      }
      parent = parent[k];
    }
    const isArray = Array.isArray(parent);
    const index = isArray ? (last === '-' ? parent.length : Number(last)) : last;
    switch (op.op) {
      case 'test':
        if (JSON.stringify(parent[index]) !== JSON.stringify(op.value)) {
          throw new Error(`${where}: test failed at ${op.path}: ${JSON.stringify(parent[index])}`);
        }
        break;
      case 'add':
        if (isArray) parent.splice(index, 0, op.value); else parent[index] = op.value;
        break;
      case 'replace':
      case 'remove':
        if (!(index in parent)) throw new Error(`${where}: ${op.op} of missing ${op.path}`);
        if (op.op === 'remove') {
          if (isArray) parent.splice(index, 1); else delete parent[index];
        } else parent[index] = op.value;
        break;
      default:
        throw new Error(`${where}: unsupported patch op ${op.op}`);
    }
  }
}

function render(dir) {
  const kfile = path.join(dir, 'kustomization.yaml');
  const [k] = parseYamlFile(kfile);
  for (const key of Object.keys(k)) {
    if (!KUSTOMIZATION_KEYS.has(key)) throw new Error(`${kfile}: unsupported field ${key}`);
  }
  let objects = [];
  for (const r of k.resources || []) {
    const p = path.join(dir, r);
    if (!path.resolve(p).startsWith(K8S)) throw new Error(`${kfile}: ${r} is outside deploy/k8s`);
    objects.push(...(fs.statSync(p).isDirectory() ? render(p) : parseYamlFile(p)));
  }
  for (const g of k.configMapGenerator || []) {
    const data = {};
    for (const f of g.files) {
      if (f.includes('..') || f.includes('=')) throw new Error(`${kfile}: unsupported file ${f}`);
      data[path.basename(f)] = fs.readFileSync(path.join(dir, f), 'utf8');
    }
    objects.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: g.name }, data });
  }
  for (const [i, p] of (k.patches || []).entries()) {
    const where = `${kfile} patch ${i}`;
    const body = YAML.parse(p.patch, { version: '1.1' });
    if (Array.isArray(body)) {
      const targets = objects.filter((o) => o.kind === p.target.kind && o.metadata.name === p.target.name);
      if (!check(targets.length === 1, `${where}: target ${p.target.kind}/${p.target.name} matches ${targets.length} objects`)) continue;
      applyJsonPatch(targets[0], body, where);
    } else if (body && body.$patch === 'delete') {
      const before = objects.length;
      objects = objects.filter((o) => !(o.kind === body.kind && o.metadata.name === body.metadata.name));
      check(objects.length === before - 1, `${where}: nothing to delete for ${body.kind}/${body.metadata.name}`);
    } else {
      throw new Error(`${where}: only JSON 6902 patches and $patch: delete are supported`);
    }
  }
  for (const r of k.replicas || []) {
    const d = objects.filter((o) => o.kind === 'Deployment' && o.metadata.name === r.name);
    if (check(d.length === 1, `${kfile}: replicas for unknown Deployment ${r.name}`)) d[0].spec.replicas = r.count;
  }
  for (const img of k.images || []) {
    let used = false;
    for (const c of containersOf(objects)) {
      const [name, tag] = c.image.split(':');
      if (name !== img.name) continue;
      c.image = `${img.newName || name}:${img.newTag || tag}`;
      used = true;
    }
    check(used, `${kfile}: image ${img.name} is used by no container`);
  }
  if (k.namespace) {
    for (const o of objects) if (!CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = k.namespace;
  }
  return objects;
}

function containersOf(objects) {
  return objects.filter((o) => o.kind === 'Deployment')
    .flatMap((d) => [...(d.spec.template.spec.initContainers || []), ...d.spec.template.spec.containers]);
}

// ---------------------------------------------- schema and unknown fields
// Runs the model's validator over proxies that record which fields it
// reads: a field the validator never looked at is not in the schema. Maps
// (labels, data, resources) are enumerated by the validator and exempt.
function trackReads(value, at, seen) {
  if (value === null || typeof value !== 'object') return value;
  const rec = { at, keys: Object.keys(value), read: new Set(), enumerated: false };
  seen.push(rec);
  const cache = new Map();
  return new Proxy(value, {
    get(t, key, recv) {
      const v = Reflect.get(t, key, recv);
      if (typeof key !== 'string') return v;
      rec.read.add(key);
      if (v === null || typeof v !== 'object') return v;
      if (!cache.has(key)) cache.set(key, trackReads(v, `${at}/${key}`, seen));
      return cache.get(key);
    },
    has(t, key) { if (typeof key === 'string') rec.read.add(key); return Reflect.has(t, key); },
    ownKeys(t) { rec.enumerated = true; return Reflect.ownKeys(t); },
  });
}

function validateObject(o, where) {
  if (!check(typeof o.apiVersion === 'string' && typeof o.kind === 'string', `${where}: no apiVersion/kind`)) return;
  let Model;
  try {
    Model = require(`kubernetes-models/${o.apiVersion}`)[o.kind];
  } catch (e) { /* unknown group/version */ }
  if (!check(Model, `${where}: unknown kind ${o.apiVersion}/${o.kind}`)) return;
  const seen = [];
  try {
    Model.prototype.validate.call(trackReads(o, '', seen));
    check(true, '');
  } catch (e) {
    check(false, `${where}: ${e.message}`);
  }
  for (const r of seen) {
    if (r.enumerated) continue;
    const unknown = r.keys.filter((key) => !r.read.has(key));
    check(unknown.length === 0, `${where}: unknown field(s) ${unknown.join(', ')} at ${r.at || '/'}`);
  }
}

// ------------------------------------------------------- binaries' flags
// Every flag a binary defines, from its --helpfull (Abseil prints
// "--name (help); default: ...;").
function flagsOf(bin) {
  if (!opts.bins[bin]) return null;
  let out;
  try {
    out = execFileSync(opts.bins[bin], ['--helpfull'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    out = `${e.stdout || ''}${e.stderr || ''}`;  // --helpfull exits non-zero
  }
  const flags = new Set([...out.matchAll(/^ {4}--([a-z0-9_]+) \(/gm)].map((m) => m[1]));
  if (!check(flags.has('flagfile') && flags.size > 4, `${bin}: no flags in --helpfull output of ${opts.bins[bin]}`)) return null;
  return flags;
}
const FLAGS = {};
for (const b of SERVICES.map((s) => `lotse_${s}`)) FLAGS[b] = flagsOf(b);
const haveBinaries = Object.values(FLAGS).every(Boolean);
if (!haveBinaries) console.log('note: binaries not given (--bin=...): flags not checked against --helpfull');

function parseArgs(args, where) {
  const m = new Map();
  for (const a of args || []) {
    const hit = a.match(/^--([a-z0-9_]+)=(.*)$/);
    if (check(hit, `${where}: argument ${a} is not --flag=value`)) m.set(hit[1], hit[2]);
  }
  return m;
}

function checkFlags(bin, names, where) {
  if (!haveBinaries) return;
  if (!check(FLAGS[bin], `${where}: ${bin} is not a Lotse binary`)) return;
  for (const n of names) check(FLAGS[bin].has(n), `${where}: ${bin} has no flag --${n}`);
}

// Abseil durations as the manifests write them: 5s, 1m30s, 250ms.
function seconds(d) {
  const units = { h: 3600, m: 60, s: 1, ms: 0.001 };
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let consumed = '';
  for (const m of d.matchAll(re)) { total += Number(m[1]) * units[m[2]]; consumed += m[0]; }
  if (consumed !== d) throw new Error(`cannot parse duration ${d}`);
  return total;
}

function matches(selector, labels) {
  if (!selector) return false;
  for (const [k, v] of Object.entries(selector.matchLabels || {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions || []) {
    const has = e.key in labels;
    if (e.operator === 'In' && !(has && e.values.includes(labels[e.key]))) return false;
    if (e.operator === 'NotIn' && has && e.values.includes(labels[e.key])) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

// tools/lotse.sh's EVENT_DESTINATIONS: the wiring the manifests must repeat.
function lotseShDestinations() {
  const text = fs.readFileSync(path.join(ROOT, 'tools/lotse.sh'), 'utf8');
  const block = text.match(/declare -A EVENT_DESTINATIONS=\(([\s\S]*?)\n\)/)[1];
  const out = {};
  for (const m of block.matchAll(/\[(\w+)\]="([^"]*)"/g)) {
    out[m[1]] = new Set(m[2].split(',').filter(Boolean).map((d) => d.split('=')[0]));
  }
  return out;
}

// Binaries and user of the image's runtime stage.
function dockerfile() {
  const text = fs.readFileSync(path.join(ROOT, 'deploy/Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const stages = text.split(/^FROM /m);
  const runtime = stages[stages.length - 1];
  const bins = new Set();
  for (const m of runtime.matchAll(/^COPY --from=build (.+)$/gm)) {
    const parts = m[1].trim().split(/\s+/);
    const dest = parts.pop();
    for (const p of parts) bins.add(path.posix.join(dest, path.posix.basename(p)));
  }
  const user = (runtime.match(/^USER (\d+)(?::(\d+))?$/m) || [])[1];
  return { bins, user: user && Number(user) };
}

// ----------------------------------------------------------- the checks
function checkRendering(name, objects) {
  const byKind = (k) => objects.filter((o) => o.kind === k);
  const where = (o) => `${name}: ${o.kind}/${o.metadata && o.metadata.name}`;
  for (const o of objects) validateObject(o, where(o));
  const ids = objects.map((o) => `${o.kind}/${o.metadata.namespace || ''}/${o.metadata.name}`);
  check(new Set(ids).size === ids.length, `${name}: duplicate objects`);

  const named = (kind) => new Set(byKind(kind).map((o) => o.metadata.name));
  const secrets = named('Secret');
  const configMaps = named('ConfigMap');
  const claims = named('PersistentVolumeClaim');
  const services = new Map(byKind('Service').map((s) => [s.metadata.name, s]));
  const image = dockerfile();
  const deployments = byKind('Deployment');
  const destinationsOf = {};   // service -> Set of destination names
  const relayReplicas = {};    // service -> replicas that run relays
  const edges = [];            // [from labels, to service name]

  for (const d of deployments) {
    const w = where(d);
    const pod = d.spec.template.spec;
    const podLabels = d.spec.template.metadata.labels || {};
    check(matches(d.spec.selector, podLabels), `${w}: selector does not match its pod labels`);
    const svc = podLabels['app.kubernetes.io/name'];
    check(SERVICES.includes(svc), `${w}: pod label app.kubernetes.io/name=${svc} is not a Lotse service`);
    const psc = pod.securityContext || {};
    check(psc.runAsNonRoot === true, `${w}: pod securityContext.runAsNonRoot is not true`);
    check(psc.seccompProfile && psc.seccompProfile.type === 'RuntimeDefault', `${w}: no RuntimeDefault seccomp profile`);
    check(image.user && psc.runAsUser === image.user, `${w}: runAsUser ${psc.runAsUser} is not the image's USER ${image.user}`);
    check(pod.automountServiceAccountToken === false, `${w}: service account token is mounted`);

    check(pod.containers.length === 1, `${w}: expected one container`);
    const c = pod.containers[0];
    const cw = `${w} container ${c.name}`;
    const sc = c.securityContext || {};
    check(sc.runAsNonRoot === true, `${cw}: securityContext.runAsNonRoot is not true`);
    check(sc.readOnlyRootFilesystem === true, `${cw}: root filesystem is writable`);
    check(sc.allowPrivilegeEscalation === false, `${cw}: privilege escalation allowed`);
    check(sc.privileged !== true, `${cw}: privileged`);
    check(sc.capabilities && (sc.capabilities.drop || []).includes('ALL') && !(sc.capabilities.add || []).length,
      `${cw}: capabilities not dropped`);
    for (const kind of ['requests', 'limits']) {
      for (const r of ['cpu', 'memory']) check(c.resources && c.resources[kind] && c.resources[kind][r], `${cw}: no ${kind}.${r}`);
    }

    const bin = (c.command || [])[0];
    check(bin === `/usr/local/bin/lotse_${svc}`, `${cw}: command ${bin} is not lotse_${svc}`);
    check(image.bins.has(bin), `${cw}: ${bin} is not in the image (deploy/Dockerfile)`);
    const args = parseArgs(c.args, cw);
    const envFlags = (c.env || []).filter((e) => e.name.startsWith('LOTSE_')).map((e) => e.name.slice(6).toLowerCase());
    checkFlags(path.basename(bin || ''), [...args.keys(), ...envFlags], cw);
    for (const f of envFlags) check(!args.has(f), `${cw}: --${f} both as argument and environment`);

    // Ports: gRPC and metrics as the flags say, on named container ports.
    const port = (n) => (c.ports || []).find((p) => p.name === n);
    const listenPort = Number((args.get('listen') || '').split(':').pop());
    check(args.has('listen') && /^0\.0\.0\.0:|^\[::\]:/.test(args.get('listen')), `${cw}: --listen must bind all interfaces`);
    check(port('grpc') && port('grpc').containerPort === listenPort, `${cw}: port "grpc" is not --listen's ${listenPort}`);
    const metricsPort = Number((args.get('metrics_listen') || '').split(':').pop());
    check(port('metrics') && port('metrics').containerPort === metricsPort, `${cw}: port "metrics" is not --metrics_listen's`);
    const ann = d.spec.template.metadata.annotations || {};
    check(ann['prometheus.io/scrape'] === 'true' && Number(ann['prometheus.io/port']) === metricsPort,
      `${cw}: prometheus.io annotations do not name the metrics port`);

    // TLS: --tls_dir is a dev-pki layout assembled from Secrets.
    const tlsDir = args.get('tls_dir');
    check(tlsDir && !args.has('insecure_dev'), `${cw}: no --tls_dir (or --insecure_dev)`);
    const mount = (c.volumeMounts || []).find((m) => m.mountPath === tlsDir);
    const tlsVolume = mount && (pod.volumes || []).find((v) => v.name === mount.name);
    const files = new Set();
    for (const src of (tlsVolume && tlsVolume.projected ? tlsVolume.projected.sources : [])) {
      for (const item of (src.secret && src.secret.items) || []) files.add(item.path);
    }
    for (const f of ['ca.crt', `servers/${svc}.crt`, `servers/${svc}.key`, `clients/svc-${svc}.crt`, `clients/svc-${svc}.key`]) {
      check(files.has(f), `${cw}: ${tlsDir}/${f} is not mounted from a Secret`);
    }
    // Revocation: --tls_crl is a CRL mounted from a Secret in the same
    // volume, so that kubelet's in-place updates reach the process.
    const crl = args.get('tls_crl') || '';
    check(crl !== '', `${cw}: no --tls_crl`);
    check(tlsDir && crl.startsWith(`${tlsDir}/`) && files.has(crl.slice(tlsDir.length + 1)),
      `${cw}: --tls_crl ${crl} is not mounted from a Secret under ${tlsDir}`);

    // Probes: kubelet's grpc probe on the plaintext health-only port, which
    // must bind all interfaces (kubelet dials the pod IP) and be a named
    // container port.
    const healthListen = args.get('health_listen') || '';
    const healthPort = Number(healthListen.split(':').pop());
    check(/^0\.0\.0\.0:|^\[::\]:/.test(healthListen), `${cw}: --health_listen must bind all interfaces`);
    check(port('health') && port('health').containerPort === healthPort, `${cw}: port "health" is not --health_listen's`);
    check(healthPort !== listenPort && healthPort !== metricsPort, `${cw}: health shares a port`);
    for (const kind of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      const p = c[kind];
      if (!check(p && p.grpc, `${cw}: no grpc ${kind}`)) continue;
      check(p.grpc.port === healthPort, `${cw}: ${kind} asks port ${p.grpc.port}, not --health_listen's ${healthPort}`);
      check(!p.exec && !p.httpGet && !p.tcpSocket, `${cw}: ${kind} has more than one handler`);
    }

    // Drain: SIGKILL must not cut the drain short.
    const drain = seconds(args.get('drain_grace') || '2s') + seconds(args.get('shutdown_deadline') || '10s');
    check(pod.terminationGracePeriodSeconds > drain,
      `${cw}: terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} is not above the drain (${drain} s)`);

    // References.
    const refs = [];
    for (const e of c.env || []) {
      if (e.valueFrom && e.valueFrom.secretKeyRef) refs.push(['Secret', e.valueFrom.secretKeyRef.name]);
      if (e.valueFrom && e.valueFrom.configMapKeyRef) refs.push(['ConfigMap', e.valueFrom.configMapKeyRef.name]);
    }
    for (const v of pod.volumes || []) {
      if (v.secret) refs.push(['Secret', v.secret.secretName]);
      if (v.configMap) refs.push(['ConfigMap', v.configMap.name]);
      if (v.persistentVolumeClaim) refs.push(['PersistentVolumeClaim', v.persistentVolumeClaim.claimName]);
      for (const s of (v.projected && v.projected.sources) || []) {
        if (s.secret) refs.push(['Secret', s.secret.name]);
        if (s.configMap) refs.push(['ConfigMap', s.configMap.name]);
      }
    }
    for (const [kind, ref] of refs) {
      if (kind === 'Secret') check(secrets.has(ref) || OPERATOR_SECRETS.includes(ref), `${cw}: Secret ${ref} is neither defined nor documented for ops`);
      if (kind === 'ConfigMap') check(configMaps.has(ref), `${cw}: ConfigMap ${ref} is not defined`);
      if (kind === 'PersistentVolumeClaim') check(claims.has(ref), `${cw}: PersistentVolumeClaim ${ref} is not defined`);
    }
    for (const m of c.volumeMounts || []) check((pod.volumes || []).some((v) => v.name === m.name), `${cw}: mount of unknown volume ${m.name}`);
    if (svc === 'identity') {
      const rules = args.get('access_rules') || '';
      check((c.volumeMounts || []).some((m) => rules.startsWith(`${m.mountPath}/`)), `${cw}: --access_rules ${rules} is not on a mounted volume`);
    }
    // Every service purges by the retention rules of a mounted ConfigMap.
    const retention = args.get('retention_rules') || '';
    check(retention !== '', `${cw}: no --retention_rules`);
    check((c.volumeMounts || []).some((m) => retention.startsWith(`${m.mountPath}/`)), `${cw}: --retention_rules ${retention} is not on a mounted volume`);

    // Database: PostgreSQL from a Secret, or SQLite on a mounted volume.
    const db = (c.env || []).find((e) => e.name === 'LOTSE_DATABASE');
    if (check(db && !args.has('database'), `${cw}: no LOTSE_DATABASE`)) {
      if (db.value !== undefined) {
        const dir = path.posix.dirname((db.value.match(/^sqlite:(\/.*)$/) || [])[1] || '');
        check((c.volumeMounts || []).some((m) => m.mountPath === dir && !m.readOnly && claims.size),
          `${cw}: database ${db.value} is not an absolute SQLite path on a volume claim`);
      } else {
        check(db.valueFrom && db.valueFrom.secretKeyRef, `${cw}: LOTSE_DATABASE is neither a value nor from a Secret`);
      }
    }

    // Calls to other services: each target is a Service with that port.
    const replicas = d.spec.replicas === undefined ? 1 : d.spec.replicas;
    const dests = (args.get('event_destinations') || '').split(',').filter(Boolean);
    const calls = dests.map((x) => x.split('=')[1]);
    // Identity's transparency report asks the other services (--audit_peers).
    for (const peer of (args.get('audit_peers') || '').split(',').filter(Boolean)) {
      calls.push(peer.split('=')[1]);
    }
    if (svc !== 'identity') {
      check(args.get('identity_target'), `${cw}: no --identity_target`);
      calls.push(args.get('identity_target'));
    }
    for (const target of calls.filter(Boolean)) {
      const [host, p] = target.split(':');
      const s = services.get(host);
      check(s && s.spec.ports.some((sp) => sp.port === Number(p)), `${cw}: ${target} is not a Service port`);
      if (s) edges.push({ from: podLabels, to: host, where: `${cw} -> ${target}` });
    }
    if (dests.length) {
      destinationsOf[svc] = new Set([...(destinationsOf[svc] || []), ...dests.map((x) => x.split('=')[0])]);
      relayReplicas[svc] = (relayReplicas[svc] || 0) + replicas;
    }
    // SQLite: one process per database file, so never two pods at once.
    if (db && db.value !== undefined) {
      check(replicas <= 1 && d.spec.strategy && d.spec.strategy.type === 'Recreate',
        `${w}: SQLite database but more than one replica or not Recreate`);
    }

    if (podLabels['app.kubernetes.io/component'] === 'server') {
      check(byKind('PodDisruptionBudget').some((p) => matches(p.spec.selector, podLabels)), `${w}: no PodDisruptionBudget`);
      const s = services.get(svc);
      check(s && matches({ matchLabels: s.spec.selector }, podLabels), `${w}: Service ${svc} does not select it`);
      check(s && s.spec.ports.every((sp) => port(sp.targetPort) || (c.ports || []).some((cp) => cp.containerPort === sp.targetPort)),
        `${w}: Service ${svc} targets a port the container does not have`);
      if (name === 'production') check(replicas >= 2, `${w}: production runs ${replicas} replica(s)`);
      if (name === 'production') check(db && db.valueFrom, `${w}: production database is not from a Secret`);
      if (name === 'dev') check(replicas === 1, `${w}: dev runs ${replicas} replicas on SQLite`);
    }
  }

  // Event wiring as tools/lotse.sh. Every replica relays (they take turns
  // per destination, common/events/relay.h), so none may lack the flag.
  const expected = lotseShDestinations();
  for (const s of SERVICES) {
    const got = [...(destinationsOf[s] || [])].sort().join(',');
    check(got === [...expected[s]].sort().join(','), `${name}: ${s} sends events to [${got}], tools/lotse.sh to [${[...expected[s]].sort()}]`);
    const all = deployments.filter((d) => d.spec.template.metadata.labels['app.kubernetes.io/name'] === s)
      .reduce((n, d) => n + (d.spec.replicas === undefined ? 1 : d.spec.replicas), 0);
    check(relayReplicas[s] >= 1 && relayReplicas[s] === all, `${name}: ${relayReplicas[s] || 0} of ${s}'s ${all} replicas relay events`);
  }

  // Network policies: deny by default; every call above allowed by a rule
  // that names its peer (the catch-all agency rule does not count).
  const policies = byKind('NetworkPolicy');
  check(policies.some((p) => Object.keys(p.spec.podSelector).length === 0 && !p.spec.ingress && !p.spec.egress
    && ['Ingress', 'Egress'].every((t) => p.spec.policyTypes.includes(t))), `${name}: no default-deny NetworkPolicy`);
  const podsOf = (svc) => deployments.map((d) => d.spec.template.metadata.labels).filter((l) => l['app.kubernetes.io/name'] === svc);
  const portAllows = (rulePorts) => !rulePorts || rulePorts.some((p) => p.port === 'grpc');
  for (const e of edges) {
    const out = policies.some((p) => matches(p.spec.podSelector, e.from) && (p.spec.egress || []).some((r) =>
      r.to && portAllows(r.ports) && podsOf(e.to).every((l) => r.to.some((peer) => peer.podSelector && matches(peer.podSelector, l)))));
    check(out, `${name}: no egress NetworkPolicy allows ${e.where}`);
    const inn = podsOf(e.to).every((l) => policies.some((p) => matches(p.spec.podSelector, l) && (p.spec.ingress || []).some((r) =>
      r.from && portAllows(r.ports) && r.from.some((peer) => peer.podSelector && matches(peer.podSelector, e.from)))));
    check(inn, `${name}: no ingress NetworkPolicy admits ${e.where}`);
  }
  for (const d of deployments) {
    const l = d.spec.template.metadata.labels;
    check(policies.some((p) => matches(p.spec.podSelector, l) && (p.spec.ingress || []).some((r) => (r.ports || []).some((x) => x.port === 'metrics'))),
      `${where(d)}: no NetworkPolicy lets Prometheus reach the metrics port`);
  }
}

// ----------------------------------------------------------------- main
function main() {
  const renderings = { base: path.join(K8S, 'base') };
  for (const o of fs.readdirSync(path.join(K8S, 'overlays'))) renderings[o] = path.join(K8S, 'overlays', o);
  check(renderings.dev && renderings.production, 'deploy/k8s/overlays must have dev and production');

  // Every YAML file parses, whether or not a kustomization uses it.
  const walk = (dir) => fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]);
  for (const f of walk(K8S).filter((x) => /\.ya?ml$/.test(x))) {
    try { parseYamlFile(f); check(true, ''); } catch (e) { check(false, e.message); }
  }

  check(fs.readFileSync(path.join(K8S, 'base/access-rules.conf'), 'utf8') ===
        fs.readFileSync(path.join(ROOT, 'config/access-rules.conf'), 'utf8'),
        'deploy/k8s/base/access-rules.conf differs from config/access-rules.conf');
  check(fs.readFileSync(path.join(K8S, 'base/retention.conf'), 'utf8') ===
        fs.readFileSync(path.join(ROOT, 'config/retention.conf'), 'utf8'),
        'deploy/k8s/base/retention.conf differs from config/retention.conf');
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  for (const s of OPERATOR_SECRETS) {
    const pattern = s.replace(/identity|cases|courses|placement/, '<service>');
    check(readme.includes(s) || readme.includes(pattern), `README.md does not document Secret ${pattern}`);
  }

  for (const [name, dir] of Object.entries(renderings)) {
    let objects;
    try {
      objects = render(dir);
    } catch (e) {
      check(false, `${name}: ${e.message}`);
      continue;
    }
    if (name === 'base') {
      // The base is checked for what it must hold on its own; the wiring
      // checks need a deployable rendering.
      for (const o of objects) validateObject(o, `base: ${o.kind}/${o.metadata.name}`);
    } else {
      checkRendering(name, objects);
    }
    if (opts.kubectl) compareWithKubectl(name, dir, objects);
  }

  for (const f of failures) console.log(`FAIL ${f}`);
  console.log(`deploy manifests: ${passed} passed, ${failures.length} failed`);
  process.exit(failures.length ? 1 : 0);
}

// Development aid: our rendering must equal kubectl's, up to the name hash
// kustomize appends to generated ConfigMaps.
function compareWithKubectl(name, dir, objects) {
  const out = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
  const strip = (s) => s.replace(/(lotse-access-rules|lotse-retention-rules)-[a-z0-9]{10}\b/g, '$1');
  const theirs = YAML.parseAllDocuments(strip(out), { version: '1.1' }).map((d) => d.toJS());
  const key = (o) => `${o.kind}/${o.metadata.name}`;
  const sortKeys = (v) => (Array.isArray(v) ? v.map(sortKeys) : v && typeof v === 'object'
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])])) : v);
  const a = new Map(objects.map((o) => [key(o), JSON.stringify(sortKeys(o))]));
  const b = new Map(theirs.map((o) => [key(o), JSON.stringify(sortKeys(o))]));
  check(a.size === b.size, `${name}: ${a.size} objects here, ${b.size} from kubectl`);
  for (const [k, v] of b) check(a.get(k) === v, `${name}: ${k} differs from kubectl kustomize`);
}

main();
