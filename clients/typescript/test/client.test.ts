// Tests of the client against a real `zkml serve` on loopback. The Go test
// TestTypeScriptClient (clients/typescript/typescript_test.go) starts the service and
// runs `node --test` with ZKML_URL, ZKML_ADMIN_KEY and ZKML_TEST_MODEL (a tiny ONNX
// model) set; without them the service tests skip.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { encodeFunctionData } from "viem";
import {
  JobFailedError,
  ZkmlClient,
  ZkmlError,
  proofCalldata,
  verifierArgs,
  verifyCall,
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

    const proof = await c.proveAndWait(model.id, { system: "groth16", input }, { initialMs: 20 });
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
