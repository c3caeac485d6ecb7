/**
 * Reading YAML that may be hostile: limits on nesting depth (building values
 * is recursive) and on aliases (each costs the library a pass over the
 * document, and aliases of aliases grow exponentially), duplicate keys found
 * in linear time, and tags the library cannot apply reported rather than
 * silently read as plain text. Every limit is checked on the parsed tree
 * before any value is built from it.
 */
import { Composer, LineCounter, Parser, YAMLParseError, isAlias, isMap, isScalar, isSeq, type CST, type Document } from "yaml";
import { ValidationError, type InputIssue } from "../errors.js";
import { formatPath, type PathSeg } from "./issues.js";
import { LIMITS } from "./schema.js";
import { keyText, rangeStart } from "./yaml-positions.js";

/**
 * uniqueKeys off: the library finds duplicate keys by comparing every key with every
 * earlier one (quadratic: a 1 MiB mapping took minutes); inspectTree() does it with a set.
 * logLevel "error": warnings would go to process.emitWarning; problems are reported as issues instead.
 */
const YAML_OPTIONS = { prettyErrors: false, logLevel: "error", uniqueKeys: false } as const;

const TOO_DEEP = `is nested more than ${LIMITS.maxNesting} levels deep (a task file needs at most 4)`;
/**
 * Nesting the library may build a tree for: its composer recurses once per level and counts on catching the
 * stack overflow of a deeper document, but an overflow that strikes while V8 compiles a regular expression
 * ends the whole process instead. Deeper documents are refused from the parser's tokens, read without
 * recursion; up to this depth the tree is built and inspectTree() names the field that is too deep.
 */
const COMPOSE_DEPTH_LIMIT = 4 * LIMITS.maxNesting;

type Position = { line: number; column: number };

export interface ParsedYaml {
  doc: Document;
  lc: LineCounter;
  /** 1-based line and column of an offset in the text. */
  at: (offset: number) => Position;
  /** The first syntax error, if any. */
  syntax?: InputIssue;
}

/** Parses the text; throws only for nesting too deep for the parser itself. */
export function parseYaml(text: string, language: "JSON" | "YAML", source: string | undefined): ParsedYaml {
  const lc = new LineCounter();
  const at = (offset: number): Position => {
    // Clamped: an error at the line break added below belongs to the last line of the text.
    const { line, col } = lc.linePos(Math.min(offset, text.length));
    return { line, column: col };
  };
  // The YAML library reads a quoted scalar cut off right after an escaped quote (`"abc \"`, `'abc ''`) at the
  // very end of the input as closed; with a line break after it, it reports the missing quote. The break
  // changes nothing else, short of a keep-chomped block scalar (`|+`) whose last line ends in a quote.
  const doc = composeYaml(/["']$/.test(text) ? text + "\n" : text, lc, source);
  let syntax: InputIssue | undefined;
  for (const err of doc.errors) {
    // The composer's own answer to a stack overflow; composeYaml refuses nesting deep enough for one first.
    if (err.code === "RESOURCE_EXHAUSTION") throw new ValidationError([{ field: "", message: TOO_DEEP, ...at(err.pos[0]) }], source);
    // Only the first syntax error: the parser's later ones are nearly always its consequences.
    // linePos is only filled in with prettyErrors, which would also bury the message in a code excerpt.
    syntax ??= { field: "", message: `invalid ${language}: ${stripLocation(err.message)}`, ...at(err.pos[0]) };
  }
  return { doc, lc, at, ...(syntax ? { syntax } : {}) };
}

/**
 * The document's value, after checking the tree's shape: building is recursive, and resolving aliases
 * costs a pass over the document each. Throws for what stops validation; returns the issues that do not
 * (duplicate keys and unknown tags leave a well-formed tree).
 */
export function hardenedValue({ doc, at }: ParsedYaml, source: string | undefined): { value: unknown; issues: InputIssue[] } {
  const tree = inspectTree(doc);
  if (tree.tooDeep) throw new ValidationError([{ field: formatPath(tree.tooDeep.path), message: TOO_DEEP, ...at(tree.tooDeep.offset) }], source);
  if (tree.aliases > LIMITS.maxAliases) {
    throw new ValidationError([{ field: "", message: `${tree.aliases} aliases (*name): a task file may use at most ${LIMITS.maxAliases}`, ...at(tree.firstAlias ?? 0) }], source);
  }
  const issues: InputIssue[] = tree.duplicates.map((d) => ({ field: formatPath(d.path), message: `duplicate key "${String(d.path[d.path.length - 1])}" (each key may appear only once)`, ...at(d.offset) }));
  // A tag the library cannot apply leaves the plain text in its place (`!!float 1` reads as the string "1"): say so rather than run something else.
  for (const w of doc.warnings) {
    if (w.code === "TAG_RESOLVE_FAILED") issues.push({ field: "", message: `unknown YAML tag ${/Unresolved tag: (\S+)/.exec(w.message)?.[1] ?? ""} (task files need no tags)`, ...at(w.pos[0]) });
  }
  try {
    return { value: doc.toJS({ maxAliasCount: LIMITS.maxAliases }), issues };
  } catch (e) {
    // Alias bombs (aliases of aliases) and aliases without an anchor land here.
    throw new ValidationError([{ field: "", message: `invalid YAML: ${e instanceof Error ? e.message : String(e)}`, ...at(tree.firstAlias ?? 0) }], source);
  }
}

/**
 * parseDocument, except that a document nested deeper than COMPOSE_DEPTH_LIMIT is refused (a
 * ValidationError at the line of its first collection that deep) before any recursive step runs.
 * The lexer and parser keep explicit stacks and read any depth.
 */
export function composeYaml(text: string, lc: LineCounter, source: string | undefined): Document {
  const tokens = [...new Parser(lc.addNewLine).parse(text)];
  const deep = firstTooDeep(tokens, COMPOSE_DEPTH_LIMIT);
  if (deep !== undefined) {
    const { line, col } = lc.linePos(deep);
    throw new ValidationError([{ field: "", message: TOO_DEEP, line, column: col }], source);
  }
  let doc: Document | undefined;
  for (const next of new Composer(YAML_OPTIONS).compose(tokens, true, text.length)) {
    if (!doc) doc = next;
    else {
      // As parseDocument: one document per text.
      doc.errors.push(new YAMLParseError([next.range[0], next.range[1]], "MULTIPLE_DOCS", "Source contains multiple documents; please use YAML.parseAllDocuments()"));
      break;
    }
  }
  // compose(…, forceDoc) yields a document for any text, an empty one included.
  return doc!;
}

/** Offset of the first collection nested more than `limit` levels deep in the parser's tokens. */
function firstTooDeep(tokens: readonly CST.Token[], limit: number): number | undefined {
  let first: number | undefined;
  const stack = tokens.map((token) => ({ token, depth: 0 }));
  while (stack.length > 0) {
    const { token, depth } = stack.pop()!;
    if (token.type === "document") {
      if (token.value) stack.push({ token: token.value, depth });
      continue;
    }
    if (token.type !== "block-map" && token.type !== "block-seq" && token.type !== "flow-collection") continue;
    if (depth + 1 > limit) {
      if (first === undefined || token.offset < first) first = token.offset;
      continue;
    }
    for (const item of token.items) {
      if (item.key) stack.push({ token: item.key, depth: depth + 1 });
      if (item.value) stack.push({ token: item.value, depth: depth + 1 });
    }
  }
  return first;
}

function stripLocation(message: string): string {
  return message.replace(/ at line \d+, column \d+:?[\s\S]*$/, "").trim();
}

interface TreeFacts {
  /** Second and later occurrences of a key in one mapping, where they are written. */
  duplicates: { path: PathSeg[]; offset: number }[];
  /** The first collection nested deeper than allowed. */
  tooDeep?: { path: PathSeg[]; offset: number };
  aliases: number;
  firstAlias?: number;
}

/**
 * One iterative pass over the parsed tree (an explicit stack: depth is what is
 * being checked, so recursion is not an option). Aliases are counted, not followed.
 */
function inspectTree(doc: Document): TreeFacts {
  const facts: TreeFacts = { duplicates: [], aliases: 0 };
  const stack: { node: unknown; path: PathSeg[]; depth: number }[] = [{ node: doc.contents, path: [], depth: 1 }];
  while (stack.length > 0) {
    const { node, path, depth } = stack.pop()!;
    if (isAlias(node)) {
      facts.aliases++;
      const offset = rangeStart(node);
      if (offset !== undefined && (facts.firstAlias === undefined || offset < facts.firstAlias)) facts.firstAlias = offset;
      continue;
    }
    if (!isMap(node) && !isSeq(node)) continue;
    if (depth > LIMITS.maxNesting) {
      const offset = rangeStart(node) ?? 0;
      if (!facts.tooDeep || offset < facts.tooDeep.offset) facts.tooDeep = { path, offset };
      continue;
    }
    if (isSeq(node)) {
      node.items.forEach((item, i) => stack.push({ node: item, path: [...path, i], depth: depth + 1 }));
      continue;
    }
    // The library's rule for "the same key": equal scalar values (keys that are collections never are).
    const seen = new Set<unknown>();
    for (const pair of node.items) {
      const key = keyText(pair.key);
      if (isScalar(pair.key) || pair.key === null) {
        const identity = isScalar(pair.key) ? pair.key.value : null;
        if (seen.has(identity)) facts.duplicates.push({ path: [...path, key], offset: rangeStart(pair.key) ?? rangeStart(node) ?? 0 });
        seen.add(identity);
      } else stack.push({ node: pair.key, path: [...path, key], depth: depth + 1 });
      stack.push({ node: pair.value, path: [...path, key], depth: depth + 1 });
    }
  }
  return facts;
}
