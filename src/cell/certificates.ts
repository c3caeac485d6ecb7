import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { UnavailableError } from "../common/errors.js";

/**
 * A cell CA and per-daemon certificates, made with the system `openssl`
 * (Debian's openssl package): every machine that runs Torca has it, its
 * output is what operators already inspect and renew certificates with, and
 * it needs no npm dependency (see docs/security.md). Keys are ECDSA P-256,
 * written 0600 in a 0700 directory; a file that exists is kept, so a cell
 * restarted keeps its CA and clients that trust it.
 */

const run = promisify(execFile);

export interface CertificateFiles {
  cert: string;
  key: string;
}

/** The CA's validity; daemons' certificates stay under the 825 days clients accept. */
const CA_DAYS = 3650;
const DAEMON_DAYS = 825;

const CA_CONFIG = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = Torca cell CA
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
`;

async function openssl(args: string[]): Promise<void> {
  try {
    await run("openssl", args);
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === "ENOENT") throw new UnavailableError("openssl is not installed (apt-get install openssl): it makes the cell's CA and certificates");
    throw new UnavailableError(`openssl ${args[0]} failed: ${(err.stderr ?? err.message).trim()}`, e);
  }
}

function privateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/** The cell CA under `dir` (ca.crt, ca.key), created when missing. */
export async function ensureCellCa(dir: string): Promise<CertificateFiles> {
  privateDir(dir);
  const files = { cert: join(dir, "ca.crt"), key: join(dir, "ca.key") };
  if (existsSync(files.cert) && existsSync(files.key)) return files;
  const config = join(dir, "ca.cnf");
  writeFileSync(config, CA_CONFIG, { mode: 0o600 });
  try {
    const days = String(CA_DAYS);
    await openssl(["req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", files.key, "-out", files.cert, "-days", days, "-config", config, "-extensions", "ca"]);
  } finally {
    rmSync(config, { force: true });
  }
  chmodSync(files.key, 0o600);
  return files;
}

/**
 * A certificate for daemon `name` signed by `ca`, naming `addresses` (IP
 * addresses become IP SANs, anything else DNS SANs), created when missing.
 */
export async function ensureDaemonCertificate(dir: string, ca: CertificateFiles, name: string, addresses: string[]): Promise<CertificateFiles> {
  privateDir(dir);
  const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  if (existsSync(files.cert) && existsSync(files.key)) return files;
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  const sans = addresses.map((a) => (isIP(a) ? `IP:${a}` : `DNS:${a}`)).join(",");
  writeFileSync(ext, `basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\nsubjectAltName = ${sans}\nauthorityKeyIdentifier = keyid\n`, { mode: 0o600 });
  try {
    await openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", files.key, "-out", csr, "-subj", `/CN=${name}`]);
    const serial = `0x${randomBytes(16).toString("hex")}`;
    await openssl(["x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-set_serial", serial, "-days", String(DAEMON_DAYS), "-out", files.cert, "-extfile", ext]);
  } finally {
    rmSync(csr, { force: true });
    rmSync(ext, { force: true });
  }
  chmodSync(files.key, 0o600);
  return files;
}
