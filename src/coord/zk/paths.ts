/** ZooKeeper's own path rules (PathUtils.validatePath); undefined when the path is valid. */
export function invalidPathReason(path: string): string | undefined {
  if (!path.startsWith("/")) return "must start with /";
  if (path.length === 1) return undefined;
  if (path.endsWith("/")) return "must not end with /";
  for (const segment of path.slice(1).split("/")) {
    if (segment === "") return "empty segment";
    if (segment === "." || segment === "..") return `relative segment "${segment}"`;
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f\ud800-\uf8ff\ufff0-\uffff]/.test(path)) return "control or reserved character";
  return undefined;
}
