// openapi-check.mjs - checks api-docs/openapi.yaml.
//
//   node openapi-check.mjs lint SPEC
//     1. validates SPEC against the official OpenAPI 3.1 JSON Schema
//        (@seriousme/openapi-schema-validator) and resolves every $ref;
//     2. project rules the meta-schema cannot know: every route of
//        DESIGN.md "REST API v1" is there with its methods, /v1/* needs the
//        bearer token, every error response uses the Error schema, request
//        bodies are closed (additionalProperties: false, at every level),
//        every example validates against its schema.
//   node openapi-check.mjs mustfail BROKEN-SPEC...
//     each file must be refused by lint (proves that the checks bite).
//   node openapi-check.mjs response SPEC METHOD PATH STATUS BODY-FILE
//     validates a real response body against the response schema the spec
//     documents for METHOD PATH STATUS.
//   node openapi-check.mjs readme SPEC README
//     checks api-docs/README.md without a daemon: every ```sh example is
//     followed by an ```http response block; every operation of the spec
//     has a runnable example answering 2xx; every error status has one;
//     every documented response matches the spec; the examples use no
//     variable but $API, $TOKEN, $CERTS and their own.
//   node openapi-check.mjs prepare README WRAP OUTDIR
//     writes each runnable example as OUTDIR/ex-N/run.sh, prefixed by WRAP
//     (for test_docs_examples.sh, which runs them).
//   node openapi-check.mjs results SPEC OUTDIR
//     checks what the examples got from the real daemon: the documented
//     status, a body that matches the spec, the documented error code, an
//     Allow header on 405, a clean exit.
//
// Exit 0 when all is well; 1 with one line per problem otherwise.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import YAML from "yaml";

const problems = [];
const problem = (msg) => problems.push(msg);

// Thrown when checking cannot go on (unparsable YAML, invalid schema):
// the problems recorded so far say why.
class Stop extends Error {}

function finish(okMsg) {
  if (problems.length) {
    for (const p of problems) console.error(`openapi-check: ${p}`);
    console.error(`openapi-check: ${problems.length} problem(s)`);
    process.exit(1);
  }
  console.log(okMsg);
  process.exit(0);
}

function loadSpec(file) {
  // uniqueKeys: a duplicated key in the YAML is an error, not a silent override.
  const doc = YAML.parseDocument(readFileSync(file, "utf8"), { uniqueKeys: true });
  if (doc.errors.length) {
    for (const e of doc.errors.slice(0, 3)) problem(`YAML: ${e.message}`);
    throw new Stop();
  }
  return doc.toJS();
}

// Every component schema in one JSON Schema document so that ajv resolves
// "#/components/schemas/X" as "https://portcullis.invalid/spec#/$defs/X".
function makeAjv(spec) {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  const defs = JSON.parse(
    JSON.stringify(spec.components?.schemas ?? {}).replaceAll('"#/components/schemas/', '"https://portcullis.invalid/spec#/$defs/'),
  );
  try {
    ajv.addSchema({ $id: "https://portcullis.invalid/spec", $defs: defs });
  } catch (e) {
    problem(`components/schemas: ${e.message}`);
    throw new Stop();
  }
  return ajv;
}
const rewrite = (schema) =>
  JSON.parse(JSON.stringify(schema).replaceAll('"#/components/schemas/', '"https://portcullis.invalid/spec#/$defs/'));

function deref(spec, obj) {
  // Follow a chain of local $refs (responses, parameters, schemas).
  let seen = 0;
  while (obj && typeof obj.$ref === "string" && obj.$ref.startsWith("#/")) {
    if (++seen > 32) throw new Error(`$ref loop at ${obj.$ref}`);
    const target = obj.$ref
      .slice(2)
      .split("/")
      .reduce((o, k) => (o == null ? undefined : o[k.replaceAll("~1", "/").replaceAll("~0", "~")]), spec);
    if (target === undefined) throw new Error(`unresolved $ref ${obj.$ref}`);
    // Keep siblings of $ref (3.1 allows them) over the target's members.
    const { $ref, ...siblings } = obj;
    obj = Object.keys(siblings).length ? { ...target, ...siblings, $ref: undefined } : target;
    if (obj.$ref === undefined) delete obj.$ref;
  }
  return obj;
}

const METHODS = ["get", "put", "post", "delete", "patch", "head", "options", "trace"];

// DESIGN.md "REST API v1": every route and method (path templates as in the spec).
const REQUIRED_ROUTES = {
  "/healthz": ["get"],
  "/metrics": ["get"],
  "/v1/status": ["get"],
  "/v1/certificates": ["get", "post"],
  "/v1/certificates/{id}": ["get", "put", "delete"],
  "/v1/target-groups": ["get", "post"],
  "/v1/target-groups/{id}": ["get", "put", "delete"],
  "/v1/target-groups/{id}/targets": ["post"],
  "/v1/target-groups/{id}/targets/{target_id}": ["delete"],
  "/v1/target-groups/{id}/health": ["get"],
  "/v1/listeners": ["get", "post"],
  "/v1/listeners/{id}": ["get", "put", "delete"],
};

// A request-body schema must be closed at every object level: unknown
// members are a 400 in the API, so the spec must say so.
function checkClosed(spec, schema, where, depth = 0) {
  if (depth > 20 || schema == null || typeof schema !== "object") return;
  const s = deref(spec, schema);
  const isObject = s.type === "object" || (Array.isArray(s.type) && s.type.includes("object")) || s.properties;
  if (isObject && s.additionalProperties !== false)
    problem(`${where}: request object schema must have additionalProperties: false`);
  for (const [k, v] of Object.entries(s.properties ?? {})) checkClosed(spec, v, `${where}.${k}`, depth + 1);
  if (s.items) checkClosed(spec, s.items, `${where}[]`, depth + 1);
  for (const key of ["oneOf", "anyOf", "allOf"])
    for (const [i, sub] of (s[key] ?? []).entries()) {
      const d = deref(spec, sub);
      // allOf members that only constrain a scalar (Name + not pattern) are fine.
      if (d.type === "null" || (d.type && d.type !== "object") || d.not || d.pattern) continue;
      checkClosed(spec, sub, `${where}.${key}[${i}]`, depth + 1);
    }
}

async function lint(file) {
  const spec = loadSpec(file);
  const validator = new Validator();
  const res = await validator.validate(structuredClone(spec));
  if (!res.valid) {
    const errs = Array.isArray(res.errors) ? res.errors : [res.errors];
    for (const e of errs)
      problem(typeof e === "string" ? e : `schema: ${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`);
    throw new Stop();
  }
  if (!String(validator.version).startsWith("3.1")) problem(`expected OpenAPI 3.1, got ${validator.version}`);
  try {
    validator.resolveRefs();
  } catch (e) {
    problem(`$ref: ${e.message}`);
  }

  const paths = spec.paths ?? {};
  const globalSecurity = spec.security ?? [];
  const ajv = makeAjv(spec);
  const opIds = new Set();
  let ops = 0;

  for (const [path, methods] of Object.entries(REQUIRED_ROUTES))
    for (const m of methods) if (!paths[path]?.[m]) problem(`missing route ${m.toUpperCase()} ${path}`);

  for (const [path, item] of Object.entries(paths)) {
    const pathParams = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
    for (const m of METHODS) {
      const op = item[m];
      if (!op) continue;
      ops++;
      const where = `${m.toUpperCase()} ${path}`;
      if (!op.operationId) problem(`${where}: no operationId`);
      else if (opIds.has(op.operationId)) problem(`${where}: duplicate operationId ${op.operationId}`);
      else opIds.add(op.operationId);

      const params = [...(item.parameters ?? []), ...(op.parameters ?? [])].map((p) => deref(spec, p));
      for (const p of params) if (p.schema) compileSchema(ajv, p.schema, `${where} parameter ${p.name}`);
      for (const name of pathParams)
        if (!params.some((p) => p.in === "path" && p.name === name)) problem(`${where}: path parameter {${name}} not declared`);

      const security = op.security ?? globalSecurity;
      const needsAuth = path.startsWith("/v1/");
      const hasBearer = security.some((req) => "bearerAuth" in req);
      if (needsAuth && !hasBearer) problem(`${where}: /v1/* must require bearerAuth`);
      if (!needsAuth && security.length) problem(`${where}: must not require a token`);

      const responses = op.responses ?? {};
      const codes = Object.keys(responses);
      if (!codes.some((c) => /^2\d\d$/.test(c))) problem(`${where}: no 2xx response`);
      const want = ["405"];
      if (needsAuth) want.push("401");
      if (path.includes("{")) want.push("404");
      if (op.requestBody) want.push("400", "413", "415", "422", "503");
      if (m === "delete") want.push("503");
      for (const c of want) if (!responses[c]) problem(`${where}: response ${c} not documented`);
      if (m === "delete" && !responses["204"]) problem(`${where}: DELETE must answer 204`);
      if (m === "post" && op.requestBody && !responses["201"]) problem(`${where}: POST must answer 201`);

      for (const [code, r0] of Object.entries(responses)) {
        const r = deref(spec, r0);
        if (!r.description) problem(`${where} ${code}: no description`);
        if (/^[45]\d\d$/.test(code)) {
          const ref = r.content?.["application/json"]?.schema?.$ref;
          if (ref !== "#/components/schemas/Error") problem(`${where} ${code}: error response must use the Error schema`);
        }
        if (code === "405" && !r.headers?.Allow) problem(`${where} 405: must document the Allow header`);
        for (const [type, media] of Object.entries(r.content ?? {})) {
          if (!media.schema) problem(`${where} ${code} ${type}: no schema`);
          else compileSchema(ajv, media.schema, `${where} ${code} ${type} schema`);
          if (code === "204") problem(`${where} 204: must have no content`);
          if (media.example !== undefined) checkExample(ajv, media.schema, media.example, `${where} ${code} example`);
        }
      }

      if (op.requestBody) {
        const rb = deref(spec, op.requestBody);
        const media = rb.content?.["application/json"];
        if (!media) problem(`${where}: request body must be application/json`);
        else {
          if (!rb.required) problem(`${where}: request body must be required`);
          compileSchema(ajv, media.schema, `${where} body schema`);
          if (media.example !== undefined) checkExample(ajv, media.schema, media.example, `${where} request example`);
          checkClosed(spec, media.schema, `${where} body`);
        }
      }
    }
  }

  // Examples inside schemas and parameters.
  for (const [name, s] of Object.entries(spec.components?.schemas ?? {})) {
    try {
      ajv.getSchema(`https://portcullis.invalid/spec#/$defs/${name}`) ?? problem(`schema ${name} does not compile`);
    } catch (e) {
      problem(`schema ${name}: ${e.message}`);
    }
    for (const ex of s.examples ?? []) checkExample(ajv, { $ref: `#/components/schemas/${name}` }, ex, `schema ${name} example`);
  }
  for (const [name, p] of Object.entries(spec.components?.parameters ?? {}))
    if (p.example !== undefined) checkExample(ajv, p.schema, p.example, `parameter ${name} example`);

  if (ops < 20) problem(`only ${ops} operations documented`);
  return `openapi-check: ${file} is valid OpenAPI ${validator.version}; ${ops} operations, project rules ok`;
}

function compileSchema(ajv, schema, where) {
  try {
    ajv.compile(rewrite(schema));
  } catch (e) {
    problem(`${where}: ${e.message}`);
  }
}

function checkExample(ajv, schema, value, where) {
  try {
    const v = ajv.compile(rewrite(schema));
    if (!v(value)) problem(`${where} does not match its schema: ${ajv.errorsText(v.errors)}`);
  } catch (e) {
    problem(`${where}: ${e.message}`);
  }
}

// Match a concrete request path ("/v1/certificates/cert-1234") to a template.
function findTemplate(paths, urlPath) {
  const exact = Object.keys(paths).find((t) => t === urlPath);
  if (exact) return exact;
  const segs = urlPath.split("/");
  const cands = Object.keys(paths).filter((t) => {
    const ts = t.split("/");
    return ts.length === segs.length && ts.every((s, i) => (s.startsWith("{") ? segs[i] !== "" : s === segs[i]));
  });
  // Prefer the template with the most literal segments.
  cands.sort((a, b) => b.split("/").filter((s) => !s.startsWith("{")).length - a.split("/").filter((s) => !s.startsWith("{")).length);
  return cands[0];
}

// The documented response object for METHOD URL STATUS, or a problem string.
// A 405 is documented on the path's operations, whatever the method.
function lookupResponse(spec, method, url, status) {
  const urlPath = url.split("?")[0];
  const tpl = findTemplate(spec.paths ?? {}, urlPath);
  if (!tpl) return { err: `${method} ${urlPath}: no such path in the spec` };
  let op = spec.paths[tpl][method.toLowerCase()];
  if (!op && String(status) === "405") op = METHODS.map((m) => spec.paths[tpl][m]).find(Boolean);
  if (!op) return { err: `${method} ${tpl}: no such operation in the spec` };
  const r0 = op.responses?.[status];
  if (!r0) return { err: `${method} ${tpl}: status ${status} is not documented` };
  return { tpl, response: deref(spec, r0) };
}

// Check 'body' (text) against the documented response; returns the parsed
// JSON (or undefined).
function checkBody(spec, ajv, method, url, status, body, where) {
  const { tpl, response: r, err } = lookupResponse(spec, method, url, status);
  if (err) {
    problem(`${where}: ${err}`);
    return undefined;
  }
  const what = `${where} (${method} ${tpl} ${status})`;
  if (!r.content) {
    if (body.trim().length) problem(`${what}: documented without a body, got ${body.length} bytes`);
    return undefined;
  }
  if (r.content["application/json"]) {
    let value;
    try {
      value = JSON.parse(body);
    } catch (e) {
      problem(`${what}: body is not JSON: ${e.message}: ${body.slice(0, 200)}`);
      return undefined;
    }
    const v = ajv.compile(rewrite(r.content["application/json"].schema));
    if (!v(value))
      for (const e of v.errors.slice(0, 8))
        problem(`${what}: ${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`);
    return value;
  }
  if (r.content["text/plain"] && !body.length) problem(`${what}: empty text body`);
  return undefined;
}

function response(file, method, url, status, bodyFile) {
  const spec = loadSpec(file);
  checkBody(spec, makeAjv(spec), method, url, status, readFileSync(bodyFile, "utf8"), "response");
  finish(`openapi-check: ${method} ${url} ${status} matches the spec`);
}

// ---------------------------------------------------------------- README

// The fenced blocks of a Markdown file: {lang, text, line}.
function fences(md) {
  const out = [];
  const lines = md.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = lines[i].match(/^```(\S*)(?:\s+(\S.*?))?\s*$/);
    if (!m) continue;
    const start = i;
    const body = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]); i++) body.push(lines[i]);
    out.push({ lang: m[1], info: m[2] ?? "", text: body.join("\n"), line: start + 1 });
  }
  return out;
}

// The runnable examples: each ```sh block and the ```http block after it.
function readmeExamples(file) {
  const blocks = fences(readFileSync(file, "utf8"));
  const examples = [];
  blocks.forEach((b, i) => {
    if (b.lang !== "sh") return;
    const next = blocks[i + 1];
    const where = `README line ${b.line}`;
    if (!next || next.lang !== "http") {
      problem(`${where}: a \`\`\`sh example must be followed by an \`\`\`http response block`);
      return;
    }
    const ex = { n: examples.length + 1, line: b.line, code: b.text, abridged: next.info === "abridged",
                 ...parseHttp(next.text, where) };
    Object.assign(ex, lastCurl(b.text, where));
    examples.push(ex);
  });
  return examples;
}

// "HTTP/1.1 201 Created\nHeader: v\n\nbody" -> {status, headers, doc_body}
function parseHttp(text, where) {
  const [head, ...rest] = text.split(/\n\s*\n/);
  const lines = head.split("\n");
  const m = lines[0].match(/^HTTP\/1\.1 (\d{3}) \S/);
  if (!m) problem(`${where}: response block must start with "HTTP/1.1 <status> <reason>"`);
  const headers = {};
  for (const l of lines.slice(1)) {
    const h = l.match(/^([A-Za-z-]+): (.*)$/);
    if (h) headers[h[1].toLowerCase()] = h[2];
    else problem(`${where}: bad header line "${l}"`);
  }
  return { status: m ? m[1] : "000", headers, doc_body: rest.join("\n\n") };
}

// Method and URL path of the last curl command of an example (static parse).
function lastCurl(code, where) {
  const joined = code.replace(/\\\n/g, " ");
  const idx = joined.lastIndexOf("curl ");
  if (idx < 0) {
    problem(`${where}: no curl command`);
    return {};
  }
  const cmd = joined.slice(idx).split(/\n|\|/)[0];
  const url = cmd.match(/"\$API(\/[^"]*)"/);
  if (!url) problem(`${where}: the last curl has no "$API/..." URL`);
  const x = cmd.match(/(?:-X|--request) +([A-Z]+)/);
  const data = /(^| )(-d|--data|--data-binary|--data-raw|--json) /.test(cmd);
  return { method: x ? x[1] : data ? "POST" : "GET", path: url ? url[1] : "" };
}

function readme(specFile, readmeFile) {
  const spec = loadSpec(specFile);
  const ajv = makeAjv(spec);
  const examples = readmeExamples(readmeFile);
  const covered = new Set();
  const statuses = new Set();
  for (const ex of examples) {
    const where = `README line ${ex.line}`;
    // Variables: only $API, $TOKEN, $CERTS and those the example sets.
    const unquoted = ex.code.replace(/'[^']*'/g, "''");
    const assigned = new Set([...unquoted.matchAll(/(?:^|[\s;(])([A-Za-z_][A-Za-z0-9_]*)=/g)].map((m) => m[1]));
    for (const m of unquoted.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g))
      if (!["API", "TOKEN", "CERTS"].includes(m[1]) && !assigned.has(m[1]))
        problem(`${where}: uses $${m[1]} (only $API, $TOKEN, $CERTS and its own variables)`);
    if (!ex.path) continue;
    const url = ex.path.replace(/\$\{?([A-Za-z_]+)\}?/g, "x$1");
    const body = checkBody(spec, ajv, ex.method, url, ex.status, ex.doc_body, where);
    if (ex.status === "405" && !ex.headers.allow) problem(`${where}: a 405 example must show the Allow header`);
    if (/^[45]/.test(ex.status) && !body?.error?.code) problem(`${where}: an error example needs a body with error.code`);
    const { tpl } = lookupResponse(spec, ex.method, url, ex.status);
    if (/^2/.test(ex.status) && tpl) covered.add(`${ex.method.toLowerCase()} ${tpl}`);
    statuses.add(ex.status);
  }
  for (const [path, item] of Object.entries(spec.paths ?? {}))
    for (const m of METHODS)
      if (item[m] && !covered.has(`${m} ${path}`))
        problem(`README: no runnable example of ${m.toUpperCase()} ${path} answering 2xx`);
  // (503: test_docs_examples.sh makes its stand-in proxy refuse that example.)
  for (const st of ["400", "401", "404", "405", "409", "413", "415", "422", "503"])
    if (!statuses.has(st)) problem(`README: no runnable example answering ${st}`);
  finish(`openapi-check: ${readmeFile}: ${examples.length} runnable examples, every operation and error status covered, responses match the spec`);
}

// What differs from one run to the next: ids, times, key material
// fingerprints, serials, days left. Masked in strings too (messages quote ids).
function normalize(v, key = "") {
  if (Array.isArray(v)) return v.map((x) => normalize(x));
  if (v && typeof v === "object")
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalize(x, k)]));
  if (key === "serial") return "<serial>";
  if (key === "days_to_expiry") return "<days>";
  if (typeof v !== "string") return v;
  return v
    .replace(/\b(cert|tgt|tg|lsn)-[0-9a-f]{16}\b/g, "<$1-id>")
    .replace(/\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\b/g, "<time>")
    .replace(/\b[0-9a-f]{64}\b/g, "<sha256>");
}

// The first path where two JSON values differ, or "".
function firstDiff(doc, got, path) {
  const show = (x) => JSON.stringify(x)?.slice(0, 120);
  if (Array.isArray(doc) || Array.isArray(got)) {
    if (!Array.isArray(doc) || !Array.isArray(got) || doc.length !== got.length)
      return `${path || "/"}: documented ${show(doc)}, got ${show(got)}`;
    for (let i = 0; i < doc.length; i++) {
      const d = firstDiff(doc[i], got[i], `${path}[${i}]`);
      if (d) return d;
    }
    return "";
  }
  if (doc && got && typeof doc === "object" && typeof got === "object") {
    for (const k of new Set([...Object.keys(doc), ...Object.keys(got)])) {
      if (!(k in doc)) return `${path}.${k}: not documented (got ${show(got[k])})`;
      if (!(k in got)) return `${path}.${k}: documented but absent`;
      const d = firstDiff(doc[k], got[k], `${path}.${k}`);
      if (d) return d;
    }
    return "";
  }
  return doc === got ? "" : `${path || "/"}: documented ${show(doc)}, got ${show(got)}`;
}

// Write one directory per runnable example under OUTDIR: ex-N/run.sh (the
// WRAP prelude, then the example), an empty ex-N/calls, and OUTDIR/examples.json.
function prepare(readmeFile, wrapFile, outDir) {
  const wrap = readFileSync(wrapFile, "utf8");
  const ex = readmeExamples(readmeFile).map((e) => {
    let doc_code = "",
      doc_field = null;
    try {
      const err = JSON.parse(e.doc_body)?.error;
      doc_code = err?.code ?? "";
      doc_field = err?.field ?? null;
    } catch {}
    let doc_json = null;
    try {
      if (e.doc_body.trim() && !e.abridged) doc_json = JSON.parse(e.doc_body);
    } catch {}
    return { n: e.n, line: e.line, code: e.code, want: e.status, doc_code, doc_field, doc_json,
             doc_headers: e.headers };
  });
  if (problems.length) finish("");
  for (const e of ex) {
    const dir = `${outDir}/ex-${e.n}`;
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/run.sh`, `${wrap}\n${e.code}\n`);
    writeFileSync(`${dir}/calls`, "");
    writeFileSync(`${dir}/want`, `${e.want}\n`);
  }
  writeFileSync(`${outDir}/examples.json`, JSON.stringify(ex));
  console.log(ex.length);
}

// Check what the examples got from the real daemon: the last curl call of
// each (ex-N/calls: "STATUS METHOD URL" per call, body-K, headers-K) and how
// the example exited (ex-N/rc, ex-N/stderr).
function results(specFile, outDir) {
  const spec = loadSpec(specFile);
  const ajv = makeAjv(spec);
  const ex = JSON.parse(readFileSync(`${outDir}/examples.json`, "utf8"));
  const read = (f) => (existsSync(f) ? readFileSync(f, "utf8") : "");
  for (const e of ex) {
    const dir = `${outDir}/ex-${e.n}`;
    const where = `example ${e.n} (README line ${e.line})`;
    const calls = read(`${dir}/calls`).split("\n").filter(Boolean);
    const rc = read(`${dir}/rc`).trim();
    const stderr = read(`${dir}/stderr`).trim().split("\n").slice(-3).join(" | ");
    if (!calls.length) {
      problem(`${where}: made no curl call (exit ${rc}): ${stderr}`);
      continue;
    }
    const [status, method, url] = calls[calls.length - 1].split(" ");
    const body = read(`${dir}/body-${calls.length}`);
    const headers = read(`${dir}/headers-${calls.length}`);
    if (status !== e.want) {
      problem(`${where}: ${method} ${url}: got HTTP ${status}, documented ${e.want}: ${body.slice(0, 300)}`);
      continue;
    }
    if (rc !== "0") problem(`${where}: the example exited ${rc}: ${stderr}`);
    const path = new URL(url).pathname;
    const value = checkBody(spec, ajv, method, path, status, body, where);
    if (e.doc_code && value?.error?.code !== e.doc_code)
      problem(`${where}: error code ${value?.error?.code}, documented ${e.doc_code}`);
    if (e.doc_code && value?.error?.field !== e.doc_field)
      problem(`${where}: error field ${value?.error?.field}, documented ${e.doc_field}`);
    if (status === "405" && !/^allow:/im.test(headers)) problem(`${where}: 405 without an Allow header`);
    // The documented headers (Content-Type may carry parameters, e.g. charset).
    const got = {};
    for (const l of headers.split(/\r?\n/)) {
      const m = l.match(/^([A-Za-z-]+):\s*(.*?)\s*$/);
      if (m) got[m[1].toLowerCase()] = m[2];
    }
    for (const [h, v] of Object.entries(e.doc_headers ?? {})) {
      const ok = h === "content-type" ? got[h]?.split(";")[0].trim() === v.split(";")[0].trim() : got[h] === v;
      if (!ok) problem(`${where}: header ${h}: documented "${v}", got "${got[h] ?? "(none)"}"`);
    }
    // The documented body itself, up to what differs between runs.
    if (e.doc_json !== null && value !== undefined) {
      const diff = firstDiff(normalize(e.doc_json), normalize(value), "");
      if (diff) problem(`${where}: the response differs from the documented one at ${diff}`);
    }
  }
  if (!ex.length) problem("no examples");
  finish(`openapi-check: ${ex.length} examples answered as documented and match the spec`);
}

const [cmd, ...args] = process.argv.slice(2);
try {
  if (cmd === "lint" && args.length === 1) finish(await lint(args[0]));
  else if (cmd === "mustfail" && args.length >= 1) {
    // Each of these broken specs must be refused by lint.
    const accepted = [];
    for (const f of args) {
      problems.length = 0;
      try {
        await lint(f);
      } catch (e) {
        if (!(e instanceof Stop)) problem(e.message);
      }
      if (!problems.length) accepted.push(f);
      else console.log(`openapi-check: ${f} refused: ${problems[0]}`);
    }
    problems.length = 0;
    for (const f of accepted) problem(`${f}: a broken spec was accepted`);
    finish(`openapi-check: all ${args.length} broken specs refused`);
  }
  else if (cmd === "response" && args.length === 5) response(...args);
  else if (cmd === "readme" && args.length === 2) readme(...args);
  else if (cmd === "results" && args.length === 2) results(...args);
  else if (cmd === "prepare" && args.length === 3) prepare(...args);
  else {
    console.error("usage: openapi-check.mjs lint SPEC | response SPEC METHOD PATH STATUS BODY-FILE |");
    console.error("       readme SPEC README | prepare README WRAP OUTDIR | results SPEC OUTDIR");
    process.exit(2);
  }
} catch (e) {
  if (!(e instanceof Stop)) problem(e.stack ?? e.message);
  finish("");
}
