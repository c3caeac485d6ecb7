/**
 * Tar archives written byte by byte (ustar headers and pax records by hand),
 * not with the library the extractor uses, so that a hostile test archive
 * contains exactly the entry under test.
 */
import { gzipSync } from "node:zlib";

export type TypeFlag = "0" | "1" | "2" | "3" | "4" | "5" | "6" | "x";

export interface RawEntry {
  name: string;
  type?: TypeFlag;
  body?: Buffer | string;
  /** Declared size; defaults to the body length. */
  size?: number;
  linkname?: string;
  mode?: number;
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  block.write(value.toString(8).padStart(length - 1, "0"), offset, length - 1, "ascii");
  block[offset + length - 1] = 0;
}

export function ustarHeader(e: RawEntry, size: number): Buffer {
  const block = Buffer.alloc(512);
  block.write(e.name, 0, 100, "utf8");
  writeOctal(block, 100, 8, e.mode ?? 0o644);
  writeOctal(block, 108, 8, 0);
  writeOctal(block, 116, 8, 0);
  writeOctal(block, 124, 12, size);
  writeOctal(block, 136, 12, 0);
  block.fill(0x20, 148, 156);
  block.write(e.type ?? "0", 156, 1, "ascii");
  block.write(e.linkname ?? "", 157, 100, "utf8");
  block.write("ustar\u0000", 257, 6, "ascii");
  block.write("00", 263, 2, "ascii");
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(sum.toString(8).padStart(6, "0") + "\u0000 ", 148, 8, "ascii");
  return block;
}

export function padded(data: Buffer): Buffer {
  const pad = (512 - (data.length % 512)) % 512;
  return pad === 0 ? data : Buffer.concat([data, Buffer.alloc(pad)]);
}

/** A pax extended header record set (`<len> key=value\n`, len counting itself). */
export function paxRecords(fields: Record<string, string>): Buffer {
  let text = "";
  for (const [k, v] of Object.entries(fields)) {
    const rest = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(rest) + 1;
    while (String(len).length + Buffer.byteLength(rest) !== len) len += 1;
    text += `${len}${rest}`;
  }
  return Buffer.from(text, "utf8");
}

export function tarOf(entries: RawEntry[], trailer: Buffer = Buffer.alloc(1024)): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = e.body === undefined ? Buffer.alloc(0) : Buffer.from(e.body);
    parts.push(ustarHeader(e, e.size ?? body.length));
    if (body.length > 0) parts.push(padded(body));
  }
  parts.push(trailer);
  return Buffer.concat(parts);
}

export function tgzOf(entries: RawEntry[], trailer?: Buffer): Buffer {
  return gzipSync(tarOf(entries, trailer));
}


const MiB = 1024 * 1024;

/**
 * A gzip bomb made cheaply: `files` files of `fileMiB` MiB of zeros each, as
 * concatenated gzip members (gunzip reads them as one stream), the zeros
 * repeating one compressed 64 MiB member. 4 × 512 MiB is 2 GiB unpacked from
 * about 2 MB.
 */
export function zeroBomb(files = 4, fileMiB = 512): Buffer {
  const zeros64 = gzipSync(Buffer.alloc(64 * MiB), { level: 9 });
  const members: Buffer[] = [];
  for (let i = 0; i < files; i++) {
    members.push(gzipSync(ustarHeader({ name: `bomb/part-${i}` }, fileMiB * MiB)));
    for (let j = 0; j < fileMiB / 64; j++) members.push(zeros64);
  }
  members.push(gzipSync(Buffer.alloc(1024)));
  return Buffer.concat(members);
}

export interface HostileArchive {
  what: string;
  tgz: Buffer;
  /** The entry a refusal must name. */
  entry: string;
  message: RegExp;
}

/**
 * One archive per rule of the safe extraction, each refused under the
 * manager's default package limits (1 GiB unpacked, 100:1 past 64 MiB,
 * 100,000 entries).
 */
export function hostileCorpus(): HostileArchive[] {
  const cut = tarOf([{ name: "cut.txt", body: "x".repeat(5000) }]);
  return [
    { what: "absolute path", tgz: tgzOf([{ name: "/tmp/torca-evil", body: "x" }]), entry: "/tmp/torca-evil", message: /absolute path/ },
    { what: "'..'", tgz: tgzOf([{ name: "a/", type: "5" }, { name: "a/../../evil", body: "x" }]), entry: "a/../../evil", message: /'\.\.'/ },
    { what: "symlink escape", tgz: tgzOf([{ name: "d/", type: "5" }, { name: "d/up", type: "2", linkname: "../.." }]), entry: "d/up", message: /resolves outside/ },
    { what: "hardlink escape", tgz: tgzOf([{ name: "passwd", type: "1", linkname: "/etc/passwd" }]), entry: "passwd", message: /hard link target "\/etc\/passwd": absolute/ },
    { what: "device file", tgz: tgzOf([{ name: "dev/null", type: "3" }]), entry: "dev/null", message: /device files are not allowed/ },
    { what: "fifo", tgz: tgzOf([{ name: "pipe", type: "6" }]), entry: "pipe", message: /fifos are not allowed/ },
    { what: "2 GiB gzip bomb", tgz: zeroBomb(), entry: "bomb/part-0", message: /more than 100 times its compressed size/ },
    {
      what: "200,000 files",
      tgz: tgzOf(Array.from({ length: 200_000 }, (_, i) => ({ name: `many/${String(i).padStart(6, "0")}` }))),
      entry: "many/100000",
      message: /too many entries \(limit 100000\)/,
    },
    { what: "truncated archive", tgz: gzipSync(cut.subarray(0, 512 + 1000)), entry: "cut.txt", message: /truncated inside this entry/ },
  ];
}
