// Tests of the client against a real `zkml serve` on loopback. The Go test
// TestTypeScriptClient (clients/typescript/typescript_test.go) starts the service and
// runs `node --test` with ZKML_URL, ZKML_ADMIN_KEY and ZKML_TEST_MODEL (a tiny ONNX
// model) set; without them the service tests skip.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { encodeFunctionData } from "viem";
import {
  JobFailedError,
  SIGNATURE_HEADER,
  ZkmlClient,
  ZkmlError,
  proofCalldata,
  verifierArgs,
  verifyCall,
  verifyWebhook,
  type Job,
} from "../src/index.js";

const url = process.env.ZKML_URL;
const adminKey = process.env.ZKML_ADMIN_KEY;
const modelPath = process.env.ZKML_TEST_MODEL;
const live = url && adminKey && modelPath ? false : "needs ZKML_URL, ZKML_ADMIN_KEY and ZKML_TEST_MODEL (run by go test ./clients/typescript)";

describe("against zkml serve", { skip: live }, () => {
  it("drives the dApp flow: key, upload, setup, proof, calldata, verify, paging, errors", async () => {
    const admin = new ZkmlClient({ baseUrl: url!, apiKey: adminKey });
    await admin.ready();
    const key = await admin.createKey("ts-client");
    assert.ok(key.key && key.webhook_secret, "created key lacks its secrets");
    const c = admin.withKey(key.key!);
    await assert.rejects(c.listKeys(), (e: unknown) => e instanceof ZkmlError && e.code === "forbidden" && e.status === 403);

    const onnx = await readFile(modelPath!);
    const created = await c.uploadModel(onnx, { name: "tiny" });
    const statuses: string[] = [];
    await c.waitJob(created.job.id, { initialMs: 20, maxMs: 200, onUpdate: (j: Job) => statuses.push(j.status) });
    assert.equal(statuses.at(-1), "succeeded");
    const model = await c.getModel(created.model.id);
    assert.equal(model.status, "compiled");
    assert.ok(model.engine_model_id);

    const input = { input_data: [[1, -0.5, 0.25, 2]] };
    await assert.rejects(c.prove(model.id, { input }), (e: unknown) => e instanceof ZkmlError && e.code === "model_not_ready");
    const setup = await c.setup(model.id, { system: "groth16" }, "ts-setup-1");
    assert.equal((await c.setup(model.id, { system: "groth16" }, "ts-setup-1")).id, setup.id, "idempotent replay");
    await c.waitJob(setup.id, { initialMs: 20 });

    // A webhook receiver on loopback (the Go test lets the service post to it).
    const delivered = new Promise<{ headers: IncomingHttpHeaders; body: Buffer }>((resolve) => {
      const server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
          res.end();
          server.close();
          resolve({ headers: req.headers, body: Buffer.concat(chunks) });
        });
      });
      server.listen(0, "127.0.0.1", () => hookUrl.resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`));
    });
    const hookUrl = deferred<string>();
    const webhook_url = await hookUrl.promise;

    const proof = await c.proveAndWait(model.id, { system: "groth16", input, webhook_url }, { initialMs: 20 });
    const hook = await delivered;
    const sig = hook.headers[SIGNATURE_HEADER.toLowerCase()] as string;
    const event = await verifyWebhook(key.webhook_secret!, sig, hook.body);
    assert.equal(event.type, "job.succeeded");
    assert.equal(event.job.proof_id, proof.id);
    await assert.rejects(verifyWebhook("another secret", sig, hook.body), /no matching signature/);
    // A manual redelivery is queued for the finished job.
    assert.equal((await c.redeliverWebhook(proof.job_id)).id, proof.job_id);
    assert.equal(proof.model_id, model.id);
    assert.equal(proof.outputs.length, 1);
    assert.equal(proof.outputs[0].length, 3);

    // The proof as a contract call: the public inputs are the service's, and encoding
    // the call again gives back the service's calldata byte for byte.
    const [solProof, publicInputs] = verifierArgs(proof);
    assert.deepEqual(publicInputs, proof.public_inputs.map(BigInt));
    assert.ok(solProof.length > 2);
    assert.equal(encodeFunctionData(verifyCall(proof)), proof.calldata);
    assert.equal(proofCalldata(proof), proof.calldata);
    assert.notEqual(proofCalldata(proof, "verifyAndDecode").slice(0, 10), proof.calldata.slice(0, 10));

    assert.deepEqual(await c.verify({ proof_id: proof.id }), { valid: true });
    const forged = [...proof.public_inputs];
    forged[forged.length - 1] = "1";
    const bad = await c.verify({ model_id: model.id, system: "groth16", proof: proof.proof, public_inputs: forged });
    assert.equal(bad.valid, false);
    assert.ok(bad.reason);

    assert.match(await c.verifierSolidity(model.id), /contract ZKMLVerifier/);

    const kinds: string[] = [];
    for await (const j of c.jobs({ limit: 1 })) kinds.push(j.kind);
    assert.deepEqual(kinds, ["compile", "setup", "prove"]);
    assert.equal((await c.listModels()).length, 1);

    await assert.rejects(c.getModel("mdl_missing"), (e: unknown) => e instanceof ZkmlError && e.code === "not_found" && e.status === 404);
    await assert.rejects(c.cancelJob(setup.id), (e: unknown) => e instanceof ZkmlError && e.code === "job_finished");
    await c.deleteModel(model.id);
    await assert.rejects(c.verify({ proof_id: proof.id }), (e: unknown) => e instanceof ZkmlError && e.code === "model_deleted");
    await admin.revokeKey(key.id);
    await assert.rejects(c.listModels(), (e: unknown) => e instanceof ZkmlError && e.code === "unauthorized");
  });
});

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A fetch that answers the scripted responses in turn (the last one repeats). */
function scripted(answers: Array<{ status: number; body: unknown; headers?: Record<string, string> }>): typeof fetch {
  let i = 0;
  return async () => {
    const a = answers[Math.min(i++, answers.length - 1)];
    return new Response(JSON.stringify(a.body), { status: a.status, headers: a.headers });
  };
}

const job = (status: string, extra: object = {}) => ({ id: "job_1", model_id: "mdl_1", kind: "prove", status, progress: 0, attempt: 1, created_at: "2026-01-01T00:00:00Z", ...extra });

describe("waitJob", () => {
  const cases = [
    {
      name: "waits out a 503 with Retry-After",
      answers: [
        { status: 503, body: { error: { code: "unavailable", message: "retry" } }, headers: { "Retry-After": "0" } },
        { status: 200, body: job("running") },
        { status: 200, body: job("succeeded", { proof_id: "prf_1" }) },
      ],
      check: async (p: Promise<Job>) => assert.equal((await p).proof_id, "prf_1"),
    },
    {
      name: "rejects a failed job with its error code",
      answers: [{ status: 200, body: job("failed", { error: { code: "invalid_input", message: "bad" } }) }],
      check: (p: Promise<Job>) => assert.rejects(p, (e: unknown) => e instanceof JobFailedError && e.job.error?.code === "invalid_input"),
    },
    {
      name: "rejects other API errors with their code",
      answers: [{ status: 404, body: { error: { code: "not_found", message: "not found" } } }],
      check: (p: Promise<Job>) => assert.rejects(p, (e: unknown) => e instanceof ZkmlError && e.code === "not_found"),
    },
    {
      name: "keeps the status of an answer without the API's error body",
      answers: [{ status: 502, body: "bad gateway" }],
      check: (p: Promise<Job>) => assert.rejects(p, (e: unknown) => e instanceof ZkmlError && e.code === "http_502"),
    },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      const c = new ZkmlClient({ baseUrl: "http://zkml.invalid", apiKey: "k", fetch: scripted(tc.answers) });
      return tc.check(c.waitJob("job_1", { initialMs: 1, maxMs: 2 }));
    });
  }
  it("stops when aborted", async () => {
    const c = new ZkmlClient({ baseUrl: "http://zkml.invalid", fetch: scripted([{ status: 200, body: job("running") }]) });
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(new Error("stop")), 20);
    await assert.rejects(c.waitJob("job_1", { initialMs: 5, signal: ctl.signal }), /stop/);
  });
});

describe("verifyWebhook", () => {
  const secret = "whsec_test";
  const body = JSON.stringify({ type: "job.succeeded", job: job("succeeded") });
  const at = new Date("2026-06-01T00:00:00Z");
  const t = Math.floor(at.getTime() / 1000);
  const sign = (s: string, ts: number, b: string) => `t=${ts},v1=${createHmac("sha256", s).update(`${ts}.${b}`).digest("hex")}`;
  const cases: Array<{ name: string; header: string | undefined; body: string; ok: boolean }> = [
    { name: "valid", header: sign(secret, t, body), body, ok: true },
    { name: "one of several signatures (secret rotation)", header: `${sign("old", t, body)},v1=${sign(secret, t, body).split("v1=")[1]}`, body, ok: true },
    { name: "wrong secret", header: sign("other", t, body), body, ok: false },
    { name: "changed body", header: sign(secret, t, body), body: body.replace("succeeded", "failed"), ok: false },
    { name: "stale timestamp", header: sign(secret, t - 301, body), body, ok: false },
    { name: "no header", header: undefined, body, ok: false },
  ];
  for (const tc of cases) {
    it(tc.name, async () => {
      const p = verifyWebhook(secret, tc.header, tc.body, { now: at });
      if (tc.ok) assert.equal((await p).job.id, "job_1");
      else await assert.rejects(p, /webhook signature/);
    });
  }
});
