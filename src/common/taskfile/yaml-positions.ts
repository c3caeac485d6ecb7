/**
 * Where a field is written: from a path in the parsed value back to the YAML
 * node, so that issues carry the line and column the user has to edit.
 */
import { isAlias, isCollection, isMap, isNode, isScalar, isSeq, stringify, type Document, type LineCounter, type Pair, type YAMLMap } from "yaml";
import type { Path, RawIssue } from "./issues.js";

interface Located {
  node: unknown;
  keyNode: unknown;
  /** How many path segments were resolved. */
  depth: number;
}

/** A key as toJS() names it in the object, so paths from values find their nodes: null is "", a collection its flow text. */
export function keyText(key: unknown): string {
  if (key === null || key === undefined) return "";
  if (isScalar(key)) return key.value === null ? "" : typeof key.value === "object" ? JSON.stringify(key.value) : String(key.value);
  if (isCollection(key)) return stringify(key, { collectionStyle: "flow", lineWidth: 0 }).trimEnd();
  return String(key);
}

const pairIndexes = new WeakMap<YAMLMap, Map<string, Pair>>();

/** A mapping's pairs by key text (the first of duplicates), built once: lookups per issue and per value stay O(1) in huge mappings. */
function pairsByKey(map: YAMLMap): Map<string, Pair> {
  let index = pairIndexes.get(map);
  if (!index) {
    index = new Map();
    for (const pair of map.items) {
      const k = keyText(pair.key);
      if (!index.has(k)) index.set(k, pair);
    }
    pairIndexes.set(map, index);
  }
  return index;
}

function walk(doc: Document, path: Path): Located {
  let node: unknown = doc.contents;
  let keyNode: unknown = undefined;
  let depth = 0;
  for (const seg of path) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = pairsByKey(node).get(String(seg));
      if (!pair) break;
      keyNode = pair.key;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === "number" && seg < node.items.length) {
      keyNode = undefined;
      node = node.items[seg];
    } else break;
    depth++;
  }
  return { node, keyNode, depth };
}

export function rangeStart(n: unknown): number | undefined {
  return isNode(n) && n.range ? n.range[0] : undefined;
}

export function locate(doc: Document, lc: LineCounter, issue: RawIssue): { line: number; column: number } | undefined {
  const target = issue.anchor === "parent" ? issue.path.slice(0, -1) : issue.path;
  const found = walk(doc, target);
  let offset: number | undefined;
  const complete = found.depth === target.length;
  if (complete && issue.anchor === "key") offset = rangeStart(found.keyNode);
  if (offset === undefined && complete) {
    // An empty value (`instances:`) has a zero-width node at the end of the line; the key reads better.
    const emptyScalar = isScalar(found.node) && found.node.value === null && !found.node.source;
    offset = emptyScalar ? rangeStart(found.keyNode) : rangeStart(found.node);
  }
  if (offset === undefined) {
    const partial = walk(doc, target.slice(0, found.depth));
    offset = rangeStart(partial.node) ?? rangeStart(doc.contents);
  }
  if (offset === undefined) return undefined;
  const pos = lc.linePos(offset);
  return { line: pos.line, column: pos.col };
}

export function plainScalarSource(doc: Document, path: Path): string | undefined {
  const { node, depth } = walk(doc, path);
  if (depth !== path.length || !isScalar(node) || node.type !== "PLAIN") return undefined;
  return typeof node.source === "string" ? node.source : undefined;
}
