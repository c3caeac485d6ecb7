import { ConflictError, ValidationError } from "../../common/errors.js";
import { readJsonIfValid } from "../../common/json.js";
import { PackageRecordSchema } from "../../common/schemas/packages.js";
import { PACKAGE_NAME_RE, PACKAGE_VERSION_RE } from "../../common/taskfile/index.js";
import type { ZkSession } from "../../coord/zk.js";
import type { Digest } from "../../storage/digest.js";

/**
 * The package registry: which blob a `name@version` stands for, kept in
 * ZooKeeper at `<root>/packages/<name>/<version>` as JSON
 * `{digest, size, pushedAt}` (ManagerDaemon.resolvePackage reads `digest`).
 *
 * A version, once pushed, names one content for good: jobs submitted earlier
 * resolved it to a digest, and a second meaning for the same name would make
 * "the same package" run different code on different machines. Re-pushing
 * identical content is therefore accepted (idempotent), different content is
 * a conflict.
 */

export interface PackageRecord {
  digest: Digest;
  size: number;
  pushedAt: number;
}

export interface PackageEntry extends PackageRecord {
  name: string;
  version: string;
}

/** The task file's rule (anything pushable must be referable): lengths capped, "." and ".." refused. */
export function validatePackageRef(name: string, version: string): void {
  const issues = [];
  if (!PACKAGE_NAME_RE.test(name)) issues.push({ field: "name", message: `${JSON.stringify(name)} is not a package name: use 1-128 of a-z 0-9 . _ -, starting with a letter or digit` });
  if (!PACKAGE_VERSION_RE.test(version)) {
    issues.push({ field: "version", message: `${JSON.stringify(version)} is not a package version: use 1-128 of A-Z a-z 0-9 . _ + -` });
  }
  if (issues.length) throw new ValidationError(issues);
}

export type RecordOutcome = { created: boolean; record: PackageRecord };

export class PackageRegistry {
  private readonly dir: string;

  /** `zk` must be the session of the current term: on the primary, the one that holds its election node. */
  constructor(
    private readonly zk: ZkSession,
    root: string,
  ) {
    this.dir = `${root}/packages`;
  }

  private path(name: string, version: string): string {
    return `${this.dir}/${name}/${version}`;
  }

  /**
   * Records `name@version` → digest with an atomic create: of two concurrent
   * pushes, exactly one creates the node and the other compares against it.
   */
  async record(name: string, version: string, rec: PackageRecord): Promise<RecordOutcome> {
    validatePackageRef(name, version);
    await this.zk.createIfAbsent(this.dir);
    await this.zk.createIfAbsent(`${this.dir}/${name}`);
    if (await this.zk.createIfAbsent(this.path(name, version), JSON.stringify(rec))) return { created: true, record: rec };
    const existing = await this.get(name, version);
    if (!existing) throw new ConflictError(`package ${name}@${version} changed while it was being recorded; push again`);
    if (existing.digest !== rec.digest) {
      throw new ConflictError(`package ${name}@${version} already exists with digest ${existing.digest}; this upload has ${rec.digest}. Versions are immutable: push a new version`, {
        existing: existing.digest,
        uploaded: rec.digest,
      });
    }
    return { created: false, record: existing };
  }

  async get(name: string, version: string): Promise<PackageRecord | undefined> {
    const r = await this.zk.getIfExists(this.path(name, version));
    return r ? parseRecord(r.data, this.path(name, version)) : undefined;
  }

  /** Every package, sorted by name, then version (as strings). */
  async list(): Promise<PackageEntry[]> {
    const out: PackageEntry[] = [];
    for (const name of (await this.zk.children(this.dir)).sort()) {
      for (const version of (await this.zk.children(`${this.dir}/${name}`)).sort()) {
        const rec = await this.get(name, version);
        if (rec) out.push({ name, version, ...rec });
      }
    }
    return out;
  }
}

/** A record of older writers (only `{digest}`) reads with size and push time 0; anything else malformed is skipped. */
function parseRecord(data: Buffer, where: string): PackageRecord | undefined {
  return readJsonIfValid(PackageRecordSchema, data, where);
}
