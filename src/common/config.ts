import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parseDocument } from "yaml";
import { z } from "zod";
import { ConfigError } from "./errors.js";
import { ALERT_KINDS, DEVICE_NAME_RE, PLACEMENT_STRATEGIES } from "./types.js";
import { ROLES, type Role } from "../auth/grants.js";
import { parseCpu, parseDuration, parseSize } from "./units.js";

/**
 * One config for manager, agent and client: one schema, one loader. Human units
 * are parsed here, once; everything downstream gets numbers (ms, bytes, cores).
 * Unknown keys are rejected so a typo never silently falls back to a default.
 *
 * Environment overrides: TORCA_<SECTION>_<KEY> (camelCase keys upper-snaked),
 * e.g. TORCA_CLUSTER_ZOOKEEPER, TORCA_MANAGER_LISTEN, TORCA_AGENT_ID.
 */

/** A config value in human units, parsed once here: the parser returns the number or an error message. */
function unit(parse: (v: unknown) => number | string) {
  return z.union([z.string(), z.number()]).transform((v, ctx) => {
    const r = parse(v);
    if (typeof r === "string") {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: r });
      return z.NEVER;
    }
    return r;
  });
}
const duration = unit(parseDuration);
const size = unit(parseSize);
const cpu = unit(parseCpu);
/** host:port; the host must be given explicitly so nothing listens beyond what the config says. */
const listen = z.string().regex(/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, "must be host:port, e.g. 127.0.0.1:7300");

/** "FIRST-LAST": uids for tasks, never root's. */
const uidRange = z
  .string()
  .regex(/^\d{1,10}-\d{1,10}$/, 'must be "FIRST-LAST", e.g. "70000-79999"')
  .transform((v) => {
    const [first, last] = v.split("-").map(Number) as [number, number];
    return { first, last };
  })
  .refine((r) => r.first >= 1 && r.first <= r.last && r.last <= 4_294_967_294, "must be FIRST-LAST with 1 ≤ FIRST ≤ LAST ≤ 4294967294 (never uid 0)");

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, "must be a SHA-256 digest: 64 lowercase hex digits");
/** ZooKeeper's digest credential: a user without ":", then a password. */
export const DIGEST_CREDENTIAL = /^[^:\s]+:\S+$/;

const resources = z.object({ cpu: cpu.optional(), memory: size.optional(), disk: size.optional() }).strict();

const tokenEntry = z
  .object({
    name: z.string().min(1),
    role: z.enum(ROLES as [Role, ...Role[]]),
    token: z.string().min(16).optional(),
    tokenFile: z.string().optional(),
    /** The SHA-256 digest (hex) of the token: a verifier, so the daemon holding it cannot present the token itself (agents verify the managers' token this way). */
    sha256: sha256.optional(),
    /** Limits a read or submit token to these namespaces (default: cluster-wide). */
    namespaces: z.array(z.string().regex(/^[A-Za-z0-9._-]{1,64}$/)).min(1).optional(),
  })
  .strict()
  .refine((t) => [t.token, t.tokenFile, t.sha256].filter((x) => x !== undefined).length === 1, "give exactly one of token, tokenFile or sha256")
  .refine((t) => !t.namespaces || t.role === "read" || t.role === "submit", "namespaces apply to read and submit tokens only");

const smtp = z
  .object({
    host: z.string(),
    port: z.number().int().min(1).max(65535),
    secure: z.boolean().default(false),
    requireTLS: z.boolean().default(false),
    auth: z.object({ user: z.string(), pass: z.string() }).strict().optional(),
    from: z.string(),
    /** Connection, greeting and socket timeout. */
    timeout: duration.default("10s"),
  })
  .strict();

const smsGateway = z
  .object({
    url: z.string().url(),
    method: z.enum(["POST", "PUT", "GET"]).default("POST"),
    headers: z.record(z.string()).default({}),
    body: z.string().default('{"to":"{{to}}","text":"{{text}}"}'),
    timeout: duration.default("5s"),
    retries: z.number().int().min(0).max(10).default(2),
  })
  .strict();

const alertRoute = z
  .object({
    kinds: z.union([z.literal("*"), z.array(z.enum(ALERT_KINDS))]),
    email: z.array(z.string()).default([]),
    sms: z.array(z.string()).default([]),
  })
  .strict();

/**
 * Where finished work is archived (src/history/). embedded: PGlite in `dir`, one manager at a time;
 * postgres: a server given by `url` or by host/port/user/password/database (libpq's PG* variables and
 * ~/.pgpass fill in what is absent, e.g. the password).
 */
const history = z
  .discriminatedUnion("engine", [
    z.object({ engine: z.literal("embedded"), dir: z.string().default(".torca/history") }).strict(),
    z
      .object({
        engine: z.literal("postgres"),
        url: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// or postgresql:// URL").optional(),
        host: z.string().min(1).optional(),
        port: z.number().int().min(1).max(65535).optional(),
        user: z.string().min(1).optional(),
        password: z.string().optional(),
        database: z.string().min(1).optional(),
        poolSize: z.number().int().min(1).max(100).default(4),
        connectTimeout: duration.default("10s"),
      })
      .strict(),
  ])
  .superRefine((h, ctx) => {
    if (h.engine === "postgres" && (h.url === undefined) === (h.host === undefined)) ctx.addIssue({ code: z.ZodIssueCode.custom, message: "give exactly one of url or host" });
  });

const devicePath = z.string().regex(/^\/[^\s]*$/, "must be an absolute path without spaces, e.g. /dev/nvidia0");
const deviceAttributes = z.record(z.union([z.string(), z.number()]).transform(String));
/** One device instance: its id alone, or with its own device nodes and attributes. */
const deviceInstance = z.union([
  z.string().min(1).max(200),
  z.object({ id: z.string().min(1).max(200), paths: z.array(devicePath).default([]), attributes: deviceAttributes.default({}) }).strict(),
]);

/** Devices of one kind the agent offers besides those it fingerprints (docs/deploy.md, "Devices"). */
const deviceGroup = z
  .object({
    name: z.string().regex(DEVICE_NAME_RE, "must be vendor/type, e.g. nvidia/gpu"),
    instances: z.array(deviceInstance).min(1).max(1024),
    /** Every instance's attributes (model, memory, ...); an instance's own override them. */
    attributes: deviceAttributes.default({}),
    /** The variable a task gets the ids of its instances in (comma-separated); nvidia/gpu also sets NVIDIA_VISIBLE_DEVICES and CUDA_VISIBLE_DEVICES. */
    env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name").optional(),
    /** Device nodes bound into a task's container whenever it has any instance (control devices such as /dev/nvidiactl). */
    paths: z.array(devicePath).default([]),
    /** Several tasks may be given the same instance. */
    shareable: z.boolean().default(false),
  })
  .strict()
  .refine((g) => new Set(g.instances.map((i) => (typeof i === "string" ? i : i.id))).size === g.instances.length, { message: "instance ids must be unique", path: ["instances"] });

const masterDaemon = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "must be 1-64 of A-Z a-z 0-9 . _ -"),
    /** argv; relative paths in it are relative to `cwd`. */
    command: z.array(z.string().min(1)).min(1),
    env: z.record(z.string()).optional(),
    /** Relative to the config file's directory; default: the master's working directory. */
    cwd: z.string().optional(),
  })
  .strict();

export const ConfigSchema = z
  .object({
    cluster: z
      .object({
        name: z.string().default("local"),
        zookeeper: z.string().default("127.0.0.1:2181"),
        root: z.string().regex(/^\/[A-Za-z0-9_\-/]*[^/]$/, "must be an absolute znode path such as /torca").default("/torca"),
        sessionTimeout: duration.default("4s"),
        /** The cluster's admin token (used by daemons among themselves and by `torca` on this host). */
        tokenFile: z.string().default(".torca/token"),
        tokens: z.array(tokenEntry).default([]),
        /** An agent's own credential (role agent: report, fetch blobs). When set, the agent neither reads nor needs the admin token. */
        agentTokenFile: z.string().optional(),
        /** A manager's credential towards agents (role manager: dispatch, stop, logs). Default: the admin token. */
        managerTokenFile: z.string().optional(),
        /**
         * Digests (SHA-256, hex) of the peers' tokens this daemon accepts: a daemon holds its own secret and
         * only verifiers of the others', so a stolen config lets nobody act as its peers. Managers accept
         * agents' tokens (agentTokenSha256); agents accept managers' (managerTokenSha256) and the admin token
         * (adminTokenSha256) without holding it.
         */
        agentTokenSha256: sha256.optional(),
        managerTokenSha256: sha256.optional(),
        adminTokenSha256: sha256.optional(),
        /**
         * TLS for every daemon's HTTP (PEM paths): the cell CA clients verify servers against, and this daemon's
         * certificate and key (naming its advertised addresses). A client needs only `ca`. See docs/security.md.
         */
        tls: z
          .object({ ca: z.string(), cert: z.string().optional(), key: z.string().optional() })
          .strict()
          .refine((t) => (t.cert === undefined) === (t.key === undefined), "give cert and key together")
          .optional(),
        /** Plain HTTP on an address beyond loopback (otherwise refused without tls). */
        insecure: z.boolean().default(false),
        /** ZooKeeper digest credential, "user:password" or `{file}` holding it: znodes get ACLs (docs/security.md). */
        zookeeperAuth: z.union([z.string().regex(DIGEST_CREDENTIAL, 'must be "user:password"'), z.object({ file: z.string() }).strict()]).optional(),
      })
      .strict()
      .default({}),
    manager: z
      .object({
        id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).default("manager-1"),
        listen: listen.default("127.0.0.1:7300"),
        advertiseUrl: z.string().url().optional(),
        storageDir: z.string().default(".torca/storage"),
        /** Task files and other API bodies (agent reports: 16×, about 16,000 tasks). YAML parsing is synchronous: 1 MiB took 1-4 s of the event loop (fuzzing), which a short ZooKeeper session does not survive. */
        bodyLimit: size.default("256KiB"),
        packageLimit: size.default("2GiB"),
        /** What a pushed package may unpack to, checked while it streams in (a push breaking them is refused with 422). */
        packageLimits: z
          .object({
            /** Sum of the sizes of its files. */
            unpackedSize: size.default("1GiB"),
            /** Unpacked bytes per compressed byte, once more than `ratioAfter` were unpacked (gzip bombs). */
            ratio: z.number().min(1).default(100),
            ratioAfter: size.default("64MiB"),
            /** Entries: files, directories, links. */
            entries: z.number().int().min(1).default(100_000),
          })
          .strict()
          .default({}),
        schedulerInterval: duration.default("500ms"),
        /** Batch tasks on capacity reserved but unused by prod tasks (docs/reclamation.md). */
        reclamation: z
          .object({
            /** Off: every task is placed against requests only, and nothing is ever throttled or evicted for its owners. */
            enabled: z.boolean().default(false),
            /** The estimate of a task's need is its peak usage over `window` times (1 + margin), at most its request. */
            margin: z.number().min(0).max(10).default(0.2),
            window: duration.default("5m"),
          })
          .strict()
          .default({}),
        /** The placement strategy of jobs whose task file names none (docs/scheduler.md). */
        placementStrategy: z.enum(PLACEMENT_STRATEGIES).default("binpack"),
        /** Scheduler worker threads placing each round concurrently (docs/scheduler.md, "Concurrent placement"); 0 places in the main thread. */
        schedulerWorkers: z.number().int().min(0).max(16).default(0),
        /** When a node without its ZooKeeper node is declared lost (docs/architecture.md, "Disconnected nodes"). */
        disconnect: z
          .object({
            /** Quiet (no ZooKeeper node, no report) this long: lost, its tasks migrate. Agents cut off this long less a margin stop their tasks. */
            grace: duration.default("30s"),
            /** Mass loss applies to cells of at least this many nodes. */
            minNodes: z.number().int().min(1).default(3),
            /** More than this share of the cell disconnected within the window: nothing migrates until the nodes return or an admin confirms. */
            massLossShare: z.number().gt(0).max(1).default(0.5),
            massLossWindow: duration.default("60s"),
          })
          .strict()
          .default({}),
        /** How long a submission's Idempotency-Key is remembered (its first answer is repeated). */
        idempotencyTtl: duration.default("24h"),
        history: history.default({ engine: "embedded" }),
        /** When finished work leaves ZooKeeper for the history store (src/manager/retention/). */
        retention: z
          .object({
            /** A terminal job (or a cron job's finished run) stays this long after it finished. */
            terminal: duration.default("1h"),
            /** At most this many terminal jobs per namespace stay; beyond, the oldest leave first. */
            keepPerNamespace: z.number().int().min(0).default(1000),
            /** Jobs (or cron runs) archived and deleted per tick, so one tick never stalls the cell. */
            batch: z.number().int().min(1).max(10_000).default(200),
            /** An expired token stays listed (and is refused as "expired") this long, then leaves ZooKeeper. */
            expiredTokens: duration.default("7d"),
          })
          .strict()
          .default({}),
        alerting: z
          .object({
            smtp: smtp.optional(),
            sms: smsGateway.optional(),
            routes: z.array(alertRoute).default([]),
            dedupWindow: duration.default("1h"),
            stormThreshold: z.number().int().min(1).default(20),
            stormWindow: duration.default("1m"),
            ratePerRecipient: z.number().int().min(1).default(10),
            rateWindow: duration.default("10m"),
            /** Delivery attempts per message and their exponential backoff. */
            retry: z
              .object({
                attempts: z.number().int().min(1).max(100).default(6),
                initialDelay: duration.default("5s"),
                factor: z.number().min(1).default(2),
                maxDelay: duration.default("5m"),
              })
              .strict()
              .default({}),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    agent: z
      .object({
        id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).optional(),
        listen: listen.default("127.0.0.1:7400"),
        advertiseUrl: z.string().url().optional(),
        dataDir: z.string().default(".torca/agent"),
        /** Capacity offered; absent fields are measured from the machine. */
        resources: resources.default({}),
        reserved: resources.default({}),
        labels: z.record(z.string()).default({}),
        portRange: z.tuple([z.number().int().min(1024), z.number().int().max(65535)]).default([20000, 29999]),
        reportInterval: duration.default("5s"),
        /** How this agent gives prod tasks back what reclaimed tasks borrowed (docs/reclamation.md). */
        reclamation: z
          .object({
            /** Headroom kept for each other task above its current cpu and memory use (a share of that use), as the manager's estimate. */
            margin: z.number().min(0).max(10).default(0.2),
            /** A reclaimed task throttled (or short of memory) this long is evicted back to pending. */
            evictAfter: duration.default("10s"),
          })
          .strict()
          .default({}),
        driver: z.enum(["auto", "lxc", "process"]).default("auto"),
        /** Each running task gets a uid of its own from `uids` (and the same number as its gid); see config/examples/agent.yaml. */
        taskUsers: z.object({ uids: uidRange.default("70000-79999") }).strict().default({}),
        /** Tasks whose task file says `user: root` may run as root here (otherwise they are refused). */
        allowRootTasks: z.boolean().default(false),
        lxc: z
          .object({
            rootfs: z.string().default("/var/lib/torca/lxc/rootfs"),
            lxcPath: z.string().default("/var/lib/torca/lxc/run"),
            /** The container user of a launch that names none; dispatched tasks always run under taskUsers. */
            uid: z.number().int().min(0).default(1000),
            gid: z.number().int().min(0).default(1000),
          })
          .strict()
          .default({}),
        packageCache: z.object({ dir: z.string().optional(), maxSize: size.default("10GiB") }).strict().default({}),
        /** Shared storage mounted on this machine (same directory as the managers' storageDir), if any. */
        storageDir: z.string().optional(),
        /** Agents serve the blobs of their cached packages to each other (docs/packages.md). */
        packagePeers: z
          .object({
            /** Serve this agent's blobs and pull from peers before shared storage. */
            enabled: z.boolean().default(true),
            /** Bytes per second served to peers, all transfers together (a token bucket). */
            rate: size.default("100MiB"),
            /** Bytes the bucket holds: what may go out at once after a quiet spell. */
            burst: size.default("8MiB"),
            /** Transfers served at once; one more is answered 503 with Retry-After. */
            maxTransfers: z.number().int().min(1).max(1000).default(4),
            /** Peers asked for one blob before shared storage. */
            tries: z.number().int().min(0).max(20).default(3),
            /** How long a pull waits for peers that are busy, or still pulling the blob themselves, before shared storage. */
            wait: duration.default("30s"),
          })
          .strict()
          .default({}),
        logs: z.object({ maxSize: size.default("16MiB"), keep: z.number().int().min(0).max(100).default(3) }).strict().default({}),
        stopGrace: duration.default("5s"),
        /** Devices declared here (GPUs are also found through nvidia-smi); a declared name replaces a fingerprinted one. */
        devices: z
          .array(deviceGroup)
          .max(64)
          .refine((groups) => new Set(groups.map((g) => g.name)).size === groups.length, "device names must be unique")
          .default([]),
      })
      .strict()
      .default({}),
    client: z
      .object({
        manager: z.string().url().optional(),
        token: z.string().optional(),
      })
      .strict()
      .default({}),
    /** `torca master`: the daemons this machine runs under supervision. */
    master: z
      .object({
        /** Where master-status.json is written (`torca master status --dir`). */
        statusDir: z.string().default("/var/lib/torca"),
        statusInterval: duration.default("5s"),
        daemons: z.array(masterDaemon).default([]),
        backoff: z
          .object({ initial: duration.default("1s"), factor: z.number().min(1).default(2), max: duration.default("1m") })
          .strict()
          .default({}),
        /** A run at least this long counts as healthy and resets the backoff. */
        stableAfter: duration.default("1m"),
        /** More than `exits` exits within `window` is a crash loop. */
        crashLoop: z.object({ exits: z.number().int().min(1).default(5), window: duration.default("5m") }).strict().default({}),
        /** Between SIGTERM and SIGKILL when the master stops its daemons. */
        stopGrace: duration.default("10s"),
      })
      .strict()
      .refine((m) => new Set(m.daemons.map((d) => d.name)).size === m.daemons.length, { message: "daemon names must be unique", path: ["daemons"] })
      .default({}),
  })
  .strict();

export type Config = z.output<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
export type HistoryConfig = Config["manager"]["history"];
export type RetentionConfig = Config["manager"]["retention"];

function describeZodIssue(i: z.ZodIssue): string {
  switch (i.code) {
    case z.ZodIssueCode.unrecognized_keys:
      return `unknown key${i.keys.length > 1 ? "s" : ""} ${i.keys.map((k) => JSON.stringify(k)).join(", ")}`;
    case z.ZodIssueCode.invalid_type:
      return i.received === "undefined" ? "is required" : `must be ${i.expected}, not ${i.received}`;
    case z.ZodIssueCode.invalid_enum_value:
      return `must be one of ${i.options.map((o) => JSON.stringify(o)).join(", ")}`;
    default:
      return i.message;
  }
}

/** Sets a value at a dotted path from an environment override. Values are parsed as YAML scalars/lists. */
function applyEnvOverrides(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  const sections = ["cluster", "manager", "agent", "client"];
  for (const [k, v] of Object.entries(env)) {
    if (!k.startsWith("TORCA_") || v === undefined) continue;
    const rest = k.slice("TORCA_".length).toLowerCase().split("_");
    const section = rest[0]!;
    if (!sections.includes(section) || rest.length < 2) continue;
    const key = rest.slice(1).map((p, i) => (i === 0 ? p : p[0]!.toUpperCase() + p.slice(1))).join("");
    const sec = (raw[section] ??= {}) as Record<string, unknown>;
    const parsed: unknown = parseDocument(v).toJS();
    sec[key] = parsed ?? v;
  }
}

export interface LoadedConfig {
  config: Config;
  /** Where relative paths were resolved from. */
  baseDir: string;
  path?: string;
}

/**
 * Loads and validates a config file (YAML), applies environment overrides, and
 * resolves relative paths against the file's directory (or cwd without a file).
 */
export function loadConfig(path?: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let raw: Record<string, unknown> = {};
  if (path) {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (e) {
      throw new ConfigError(`cannot read config ${path}: ${(e as Error).message}`);
    }
    const doc = parseDocument(text, { uniqueKeys: true });
    if (doc.errors.length) throw new ConfigError(`${path}: ${doc.errors[0]!.message}`);
    const js: unknown = doc.toJS() ?? {};
    if (typeof js !== "object" || js === null || Array.isArray(js)) throw new ConfigError(`${path}: the config must be a mapping`);
    raw = js as Record<string, unknown>;
  }
  applyEnvOverrides(raw, env);
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const msgs = parsed.error.issues.map((i) => {
      const field = i.path.join(".");
      return `${field || "(top level)"}: ${describeZodIssue(i)}`;
    });
    const first = parsed.error.issues[0]!;
    throw new ConfigError(`${path ?? "config"}: ${msgs.join("; ")}`, first.path.join("."));
  }
  const baseDir = path ? dirname(resolve(path)) : process.cwd();
  const config = parsed.data;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  config.cluster.tokenFile = abs(config.cluster.tokenFile);
  config.manager.storageDir = abs(config.manager.storageDir);
  if (config.manager.history.engine === "embedded") config.manager.history.dir = abs(config.manager.history.dir);
  config.agent.dataDir = abs(config.agent.dataDir);
  if (config.agent.storageDir) config.agent.storageDir = abs(config.agent.storageDir);
  if (config.agent.packageCache.dir) config.agent.packageCache.dir = abs(config.agent.packageCache.dir);
  for (const t of config.cluster.tokens) if (t.tokenFile) t.tokenFile = abs(t.tokenFile);
  if (config.cluster.agentTokenFile) config.cluster.agentTokenFile = abs(config.cluster.agentTokenFile);
  if (config.cluster.managerTokenFile) config.cluster.managerTokenFile = abs(config.cluster.managerTokenFile);
  const tls = config.cluster.tls;
  if (tls) config.cluster.tls = { ca: abs(tls.ca), ...(tls.cert ? { cert: abs(tls.cert) } : {}), ...(tls.key ? { key: abs(tls.key) } : {}) };
  if (typeof config.cluster.zookeeperAuth === "object") config.cluster.zookeeperAuth.file = abs(config.cluster.zookeeperAuth.file);
  config.master.statusDir = abs(config.master.statusDir);
  for (const d of config.master.daemons) if (d.cwd) d.cwd = abs(d.cwd);
  return { config, baseDir, path };
}

export function parseListen(l: string): { host: string; port: number } {
  const i = l.lastIndexOf(":");
  return { host: l.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(l.slice(i + 1)) };
}
