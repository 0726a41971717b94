// @zkml/client: a typed client of the zkml proving service.
//
// The request and response types come from api/openapi.json (src/schema.ts, generated
// by openapi-typescript); this file is the small fetch wrapper around them: one method
// per endpoint, errors that carry the API's code, the job/poll flow with backoff, and
// the conversion of a proof into a viem contract call of ZKMLVerifier.

import { decodeFunctionData, encodeFunctionData, type Hex } from "viem";
import { zkmlVerifierAbi } from "./abi.js";
import type { components, operations } from "./schema.js";

export type { components, operations, paths } from "./schema.js";
export { zkmlVerifierAbi } from "./abi.js";

type Schemas = components["schemas"];
/** A compile, setup or prove job. */
export type Job = Schemas["Job"];
/** An uploaded model. */
export type Model = Schemas["Model"];
/** A finished proof with its calldata. */
export type Proof = Schemas["Proof"];
/** An API key; `key` and `webhook_secret` only in the answer of createKey. */
export type Key = Schemas["Key"];
/** "groth16" or "plonk". */
export type ProvingSystem = Schemas["System"];
export type JobStatus = Schemas["JobStatus"];
/** The API's stable error codes. */
export type ErrorCode = Schemas["Error"]["error"]["code"];

type JSONBody<Op extends keyof operations> = operations[Op] extends {
  requestBody?: { content: { "application/json": infer B } };
}
  ? B
  : never;
type Answer<Op extends keyof operations, S extends number> = operations[Op]["responses"] extends {
  [K in S]: { content: { "application/json": infer R } };
}
  ? R
  : never;

export type SetupRequest = JSONBody<"setupModel">;
export type ProofRequest = JSONBody<"createProof">;
export type VerifyRequest = JSONBody<"verify">;
export type VerifyResult = Answer<"verify", 200>;
export type JobPage = Answer<"listJobs", 200>;
/** The answer of uploadModel: the model and its compile job. */
export type CreatedModel = Required<Answer<"createModel", 202>>;
/** The JSON form of a model upload; `onnx` is base64. uploadModel takes bytes. */
export type ModelUploadJSON = Extract<JSONBody<"createModel">, { onnx: string }>;

/** A non-2xx answer of the API. */
export class ZkmlError extends Error {
  constructor(
    /** HTTP status. */
    readonly status: number,
    /** The API's stable code (see ErrorCode), or "http_<status>" for an answer without one. */
    readonly code: ErrorCode | `http_${number}`,
    /** For humans. */
    readonly detail: string,
    /** Retry-After in milliseconds (set on 503), or undefined. */
    readonly retryAfterMs?: number,
  ) {
    super(`${status} ${code}: ${detail}`);
    this.name = "ZkmlError";
  }
}

/** A job that failed or was cancelled, as waitJob reports it. */
export class JobFailedError extends Error {
  constructor(readonly job: Job) {
    super(`${job.kind} job ${job.id} ${job.status}${job.error ? `: ${job.error.code}: ${job.error.message}` : ""}`);
    this.name = "JobFailedError";
  }
}

/** Pacing of waitJob: Initial, then each wait `factor` times longer, up to `maxMs`. */
export interface Backoff {
  initialMs?: number;
  maxMs?: number;
  factor?: number;
  /** Sees every job view polled (status, stage, progress). */
  onUpdate?: (job: Job) => void;
  /** Aborts the wait. */
  signal?: AbortSignal;
}

export interface ClientOptions {
  /** The service's root, e.g. "http://127.0.0.1:8080". */
  baseUrl: string;
  /** Bearer key: a tenant key, or the admin key for key management. */
  apiKey?: string;
  /** fetch implementation (default: the global fetch). */
  fetch?: typeof fetch;
}

type Query = Record<string, string | number | undefined>;

interface Call {
  method: "GET" | "POST" | "DELETE";
  path: string;
  query?: Query;
  body?: unknown;
  headers?: Record<string, string | undefined>;
  signal?: AbortSignal;
}

/** A client of one zkml service with one API key. */
export class ZkmlClient {
  readonly baseUrl: string;
  readonly apiKey?: string;
  private readonly fetchFn: typeof fetch;

  constructor(opts: ClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
    this.apiKey = opts.apiKey;
    this.fetchFn = opts.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** A client of the same service with another key (e.g. a tenant key from createKey). */
  withKey(apiKey: string): ZkmlClient {
    return new ZkmlClient({ baseUrl: this.baseUrl, apiKey, fetch: this.fetchFn });
  }

  private async send(c: Call): Promise<Response> {
    let url = this.baseUrl + c.path;
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(c.query ?? {})) if (v !== undefined && v !== "") q.set(k, String(v));
    if ([...q].length > 0) url += "?" + q.toString();
    const headers: Record<string, string> = {};
    if (this.apiKey) headers["Authorization"] = `Bearer ${this.apiKey}`;
    if (c.body !== undefined) headers["Content-Type"] = "application/json";
    for (const [k, v] of Object.entries(c.headers ?? {})) if (v) headers[k] = v;
    const res = await this.fetchFn(url, {
      method: c.method,
      headers,
      body: c.body === undefined ? undefined : JSON.stringify(c.body),
      signal: c.signal,
    });
    if (!res.ok) throw await toError(res);
    return res;
  }

  private async json<T>(c: Call): Promise<T> {
    return (await (await this.send(c)).json()) as T;
  }

  private async none(c: Call): Promise<void> {
    await (await this.send(c)).arrayBuffer();
  }

  /** GET /readyz: resolves when the service can serve requests. */
  async ready(): Promise<void> {
    await this.none({ method: "GET", path: "/readyz" });
  }

  /** The service's OpenAPI document. */
  openapi(): Promise<Record<string, unknown>> {
    return this.json({ method: "GET", path: "/v1/openapi.json" });
  }

  // ---- keys (admin key) ----

  /** Creates a tenant key; the answer holds the key and its webhook secret (shown once). */
  createKey(name: string): Promise<Key> {
    return this.json({ method: "POST", path: "/v1/keys", body: { name } satisfies JSONBody<"createKey"> });
  }

  async listKeys(): Promise<Key[]> {
    return (await this.json<Answer<"listKeys", 200>>({ method: "GET", path: "/v1/keys" })).keys ?? [];
  }

  revokeKey(id: string): Promise<void> {
    return this.none({ method: "DELETE", path: `/v1/keys/${encodeURIComponent(id)}` });
  }

  // ---- models ----

  /** Uploads an ONNX model; the answer holds the model and its compile job. */
  uploadModel(
    onnx: Uint8Array,
    opts: Omit<ModelUploadJSON, "onnx"> = {},
  ): Promise<CreatedModel> {
    const body: ModelUploadJSON = { ...opts, onnx: base64(onnx) };
    return this.json({ method: "POST", path: "/v1/models", body });
  }

  getModel(id: string): Promise<Model> {
    return this.json({ method: "GET", path: `/v1/models/${encodeURIComponent(id)}` });
  }

  async listModels(): Promise<Model[]> {
    return (await this.json<Answer<"listModels", 200>>({ method: "GET", path: "/v1/models" })).models ?? [];
  }

  deleteModel(id: string): Promise<void> {
    return this.none({ method: "DELETE", path: `/v1/models/${encodeURIComponent(id)}` });
  }

  /** Queues the key generation of a compiled model (groth16 when system is absent). */
  setup(modelId: string, req: SetupRequest = {}, idempotencyKey?: string): Promise<Job> {
    return this.json({
      method: "POST",
      path: `/v1/models/${encodeURIComponent(modelId)}/setup`,
      body: req,
      headers: { "Idempotency-Key": idempotencyKey },
    });
  }

  /** The Solidity verifier (ZKMLVerifier) of a model's keys. */
  async verifierSolidity(modelId: string, system: ProvingSystem = "groth16"): Promise<string> {
    const res = await this.send({
      method: "GET",
      path: `/v1/models/${encodeURIComponent(modelId)}/verifier.sol`,
      query: { system },
    });
    return res.text();
  }

  // ---- proofs ----

  /** Queues a proof of one inference; input is {input_data: [[...flat row-major numbers]]}. */
  prove(modelId: string, req: ProofRequest, idempotencyKey?: string): Promise<Job> {
    return this.json({
      method: "POST",
      path: `/v1/models/${encodeURIComponent(modelId)}/proofs`,
      body: req,
      headers: { "Idempotency-Key": idempotencyKey },
    });
  }

  getProof(id: string): Promise<Proof> {
    return this.json({ method: "GET", path: `/v1/proofs/${encodeURIComponent(id)}` });
  }

  /** prove, waitJob and getProof in one. */
  async proveAndWait(modelId: string, req: ProofRequest, backoff?: Backoff): Promise<Proof> {
    const job = await this.waitJob((await this.prove(modelId, req)).id, backoff);
    if (!job.proof_id) throw new Error(`prove job ${job.id} succeeded without a proof_id`);
    return this.getProof(job.proof_id);
  }

  /** Verifies a proof with the service; an invalid proof answers {valid: false, reason}. */
  verify(req: VerifyRequest): Promise<VerifyResult> {
    return this.json({ method: "POST", path: "/v1/verify", body: req });
  }

  // ---- jobs ----

  getJob(id: string): Promise<Job> {
    return this.json({ method: "GET", path: `/v1/jobs/${encodeURIComponent(id)}` });
  }

  cancelJob(id: string): Promise<Job> {
    return this.json({ method: "POST", path: `/v1/jobs/${encodeURIComponent(id)}/cancel` });
  }

  /**
   * Delivers a finished job's webhook again (a receiver that was down past the retry
   * window, or lost the event); the job's `webhook.deliveries` list every attempt.
   */
  redeliverWebhook(id: string): Promise<Job> {
    return this.json({ method: "POST", path: `/v1/jobs/${encodeURIComponent(id)}/webhook` });
  }

  /** One page of the caller's jobs, oldest first. */
  listJobs(filter: { status?: JobStatus; limit?: number; cursor?: string } = {}): Promise<JobPage> {
    return this.json({ method: "GET", path: "/v1/jobs", query: filter });
  }

  /** All the caller's jobs matching filter, fetched page by page. */
  async *jobs(filter: { status?: JobStatus; limit?: number } = {}): AsyncGenerator<Job> {
    let cursor: string | undefined;
    do {
      const page = await this.listJobs({ ...filter, cursor });
      yield* page.jobs;
      cursor = page.next_cursor;
    } while (cursor);
  }

  /**
   * Polls a job until it ends. Resolves with the succeeded job (proof_id set for a
   * prove job); rejects with JobFailedError for a failed or cancelled job. A 503 (the
   * service's database is down for a while) is waited out, honouring Retry-After.
   */
  async waitJob(id: string, b: Backoff = {}): Promise<Job> {
    let delay = b.initialMs ?? 100;
    const max = Math.max(b.maxMs ?? 2000, delay);
    const factor = b.factor && b.factor >= 1 ? b.factor : 1.5;
    for (;;) {
      let wait = delay;
      try {
        const job = await this.json<Job>({ method: "GET", path: `/v1/jobs/${encodeURIComponent(id)}`, signal: b.signal });
        b.onUpdate?.(job);
        if (job.status === "succeeded") return job;
        if (job.status === "failed" || job.status === "cancelled") throw new JobFailedError(job);
      } catch (e) {
        if (!(e instanceof ZkmlError && e.status === 503)) throw e;
        wait = Math.max(wait, e.retryAfterMs ?? 0);
      }
      await sleep(wait, b.signal);
      delay = Math.min(delay * factor, max);
    }
  }
}

async function toError(res: Response): Promise<ZkmlError> {
  const text = await res.text();
  const ra = Number.parseInt(res.headers.get("Retry-After") ?? "", 10);
  const retryAfterMs = Number.isFinite(ra) && ra >= 0 ? ra * 1000 : undefined;
  try {
    const body = JSON.parse(text) as Partial<Schemas["Error"]>;
    if (body.error?.code) return new ZkmlError(res.status, body.error.code, body.error.message ?? "", retryAfterMs);
  } catch {
    // not the API's error body (a proxy's page, say): keep the status and text
  }
  return new ZkmlError(res.status, `http_${res.status}`, text.trim(), retryAfterMs);
}

/** Standard base64 of bytes, in browsers and node alike. */
function base64(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", abort);
      resolve();
    }, ms);
    const abort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", abort, { once: true });
  });
}

// ---- on-chain ----

/** The arguments of ZKMLVerifier.verify and verifyAndDecode: (proof bytes, public inputs). */
export type VerifierArgs = readonly [Hex, readonly bigint[]];

/**
 * The (proof, publicInputs) arguments of the ZKMLVerifier contract for a proof from the
 * service, read from its calldata (the encoded verify call the service made): the
 * Solidity proof bytes differ from the proof field, which is gnark's serialization.
 */
export function verifierArgs(proof: Pick<Proof, "calldata">): VerifierArgs {
  const call = decodeFunctionData({ abi: zkmlVerifierAbi, data: proof.calldata as Hex });
  if (call.functionName !== "verify") throw new Error(`calldata calls ${call.functionName}, not verify`);
  const [p, inputs] = call.args;
  return [p, inputs];
}

/**
 * A viem contract call of ZKMLVerifier.verify for a proof, to spread into
 * publicClient.readContract({ address, ...verifyCall(proof) }) or simulateContract.
 */
export function verifyCall(proof: Pick<Proof, "calldata">) {
  return { abi: zkmlVerifierAbi, functionName: "verify", args: verifierArgs(proof) } as const;
}

/** The same as verifyCall for verifyAndDecode, which also returns the decoded outputs. */
export function verifyAndDecodeCall(proof: Pick<Proof, "calldata">) {
  return { abi: zkmlVerifierAbi, functionName: "verifyAndDecode", args: verifierArgs(proof) } as const;
}

/**
 * The transaction data of a ZKMLVerifier call for a proof: "verify" is the service's
 * own calldata (checked to decode), "verifyAndDecode" is encoded from its arguments.
 */
export function proofCalldata(
  proof: Pick<Proof, "calldata">,
  functionName: "verify" | "verifyAndDecode" = "verify",
): Hex {
  return encodeFunctionData({ abi: zkmlVerifierAbi, functionName, args: verifierArgs(proof) });
}

// ---- webhooks ----

/** The header that carries a webhook's signature. */
export const SIGNATURE_HEADER = "Zkml-Signature";

/** The body the service POSTs to a job's webhook_url when the job ends. */
export interface WebhookEvent {
  type: "job.succeeded" | "job.failed" | "job.cancelled";
  job: Job;
}

/**
 * Checks a webhook's signature header ("t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
 * t + "." + body)>", as api.VerifyWebhook checks it in Go) against the raw body with the
 * key's webhook secret, refuses a timestamp more than toleranceSec (default 300) away
 * from now (replays), and returns the decoded event. Pass the body exactly as received.
 */
export async function verifyWebhook(
  secret: string,
  header: string | null | undefined,
  body: string | Uint8Array,
  opts: { toleranceSec?: number; now?: Date } = {},
): Promise<WebhookEvent> {
  let t = "";
  const sigs: string[] = [];
  for (const part of (header ?? "").split(",")) {
    const [k, v = ""] = part.trim().split("=", 2);
    if (k === "t") t = v;
    else if (k === "v1") sigs.push(v.toLowerCase());
  }
  if (!/^[0-9]+$/.test(t)) throw new Error("webhook signature: bad timestamp");
  const now = (opts.now ?? new Date()).getTime() / 1000;
  if (Math.abs(now - Number(t)) > (opts.toleranceSec ?? 300)) throw new Error("webhook signature: timestamp outside tolerance");
  const raw = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const prefix = new TextEncoder().encode(t + ".");
  const signed = new Uint8Array(prefix.length + raw.length);
  signed.set(prefix);
  signed.set(raw, prefix.length);
  const want = [...new Uint8Array(await crypto.subtle.sign("HMAC", key, signed))].map((b) => b.toString(16).padStart(2, "0")).join("");
  if (!sigs.some((s) => constantTimeEqual(s, want))) throw new Error("webhook signature: no matching signature");
  return JSON.parse(new TextDecoder().decode(raw)) as WebhookEvent;
}

/** Compares two strings in time that depends only on their lengths. */
function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return d === 0;
}
