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
//   node openapi-check.mjs response SPEC METHOD PATH STATUS BODY-FILE
//     validates a real response body against the response schema the spec
//     documents for METHOD PATH STATUS (used by test_docs_examples.sh).
//
// Exit 0 when all is well; 1 with one line per problem otherwise.
import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import YAML from "yaml";

const problems = [];
const problem = (msg) => problems.push(msg);

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
    for (const e of doc.errors) problem(`YAML: ${e.message}`);
    finish("");
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
    finish("");
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
    finish("");
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
  finish(`openapi-check: ${file} is valid OpenAPI ${validator.version}; ${ops} operations, project rules ok`);
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

function response(file, method, url, status, bodyFile) {
  const spec = loadSpec(file);
  const urlPath = url.split("?")[0];
  const tpl = findTemplate(spec.paths ?? {}, urlPath);
  if (!tpl) {
    problem(`${method} ${urlPath}: no such path in the spec`);
    return finish("");
  }
  const op = spec.paths[tpl][method.toLowerCase()];
  if (!op) {
    problem(`${method} ${tpl}: no such operation in the spec`);
    return finish("");
  }
  const r0 = op.responses?.[status];
  if (!r0) {
    problem(`${method} ${tpl}: status ${status} is not documented`);
    return finish("");
  }
  const r = deref(spec, r0);
  const body = readFileSync(bodyFile, "utf8");
  const where = `${method} ${tpl} ${status}`;
  if (!r.content) {
    if (body.length) problem(`${where}: documented without a body, got ${body.length} bytes`);
    return finish(`openapi-check: ${where} matches (no body)`);
  }
  if (r.content["application/json"]) {
    let value;
    try {
      value = JSON.parse(body);
    } catch (e) {
      problem(`${where}: body is not JSON: ${e.message}`);
      return finish("");
    }
    const ajv = makeAjv(spec);
    const v = ajv.compile(rewrite(r.content["application/json"].schema));
    if (!v(value)) for (const e of v.errors) problem(`${where}: ${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`);
  } else if (r.content["text/plain"]) {
    if (typeof body !== "string") problem(`${where}: expected text`);
  }
  finish(`openapi-check: ${where} matches the spec`);
}

const [cmd, ...args] = process.argv.slice(2);
try {
  if (cmd === "lint" && args.length === 1) await lint(args[0]);
  else if (cmd === "response" && args.length === 5) response(...args);
  else {
    console.error("usage: openapi-check.mjs lint SPEC | response SPEC METHOD PATH STATUS BODY-FILE");
    process.exit(2);
  }
} catch (e) {
  problem(e.message);
  finish("");
}
