// Re-serializes JSON text the way Python's `json.dumps(obj, sort_keys=True, separators=(",", ":"))` prints the
// object the text came from. Today's BaluHost signs exactly that form but sends `json.dumps(obj)` (insertion order,
// ", " / ": " separators) — or, with newer httpx, compact UTF-8 — so a receiver must rebuild the signed bytes.
//
// Rules, matching CPython's json encoder with its defaults (ensure_ascii=True, allow_nan=True):
//   - object keys sorted by code point (Python compares str by code point, not by UTF-16 unit); a repeated key
//     keeps its last value, as json.loads builds a dict;
//   - strings: `"` `\` and \b \f \n \r \t escaped by name, every other UTF-16 unit outside 0x20–0x7E as \uXXXX in
//     lower-case hex (astral characters become their surrogate pair, lone surrogates stay as they are);
//   - numbers keep the literal as written: the text was printed by Python's own repr (`16.0`, `1e-07`), and
//     re-printing it from a JS double would lose exactly that (JS prints `16`);
//   - NaN, Infinity and -Infinity are accepted as Python writes them.
// Anything that is not JSON in that sense gives null (the caller then has only the raw bytes to go by).

type Node =
  | { t: 'obj'; entries: Map<string, Node> }
  | { t: 'arr'; items: Node[] }
  | { t: 'str'; value: string }
  | { t: 'lit'; text: string };

const MAX_DEPTH = 500;

export class JsonSyntaxError extends Error {
  override name = 'JsonSyntaxError';
}

/** The Python canonical form of `text`, or null if `text` is not JSON that Python's json.loads accepts. */
export function pythonCanonicalJson(text: string): string | null {
  try {
    return emit(parsePythonJson(text));
  } catch (err) {
    if (err instanceof JsonSyntaxError) return null;
    throw err;
  }
}

/** Parses JSON as Python's json.loads does (NaN/Infinity allowed), keeping number literals as written. */
export function parsePythonJson(text: string): Node {
  const p = new Parser(text);
  p.ws();
  const v = p.value(0);
  p.ws();
  if (p.i !== text.length) throw new JsonSyntaxError(`extra data at ${p.i}`);
  return v;
}

/** Turns the parsed text into plain JS values (for serving the stored snapshot); NaN and ±Infinity become null
 *  because a JSON reader on the other end would choke on them. */
export function toPlainValue(node: Node): unknown {
  switch (node.t) {
    case 'obj': return Object.fromEntries([...node.entries].map(([k, v]) => [k, toPlainValue(v)]));
    case 'arr': return node.items.map(toPlainValue);
    case 'str': return node.value;
    case 'lit':
      if (node.text === 'true') return true;
      if (node.text === 'false') return false;
      if (node.text === 'null') return null;
      { const n = Number(node.text); return Number.isFinite(n) ? n : null; }
  }
}

class Parser {
  readonly s: string;
  i = 0;
  constructor(s: string) {
    this.s = s;
  }

  ws(): void {
    // Python's json accepts exactly these four as whitespace.
    while (this.i < this.s.length) {
      const c = this.s.charCodeAt(this.i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.i++;
      else break;
    }
  }

  value(depth: number): Node {
    if (depth > MAX_DEPTH) throw new JsonSyntaxError('nested too deeply');
    const c = this.s[this.i];
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
    if (c === '"') return { t: 'str', value: this.string() };
    for (const lit of ['true', 'false', 'null', 'NaN', 'Infinity', '-Infinity']) {
      if (this.s.startsWith(lit, this.i)) {
        this.i += lit.length;
        return { t: 'lit', text: lit };
      }
    }
    const m = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?/y;
    m.lastIndex = this.i;
    const found = m.exec(this.s);
    if (!found) throw new JsonSyntaxError(`unexpected character at ${this.i}`);
    this.i += found[0].length;
    return { t: 'lit', text: found[0] };
  }

  object(depth: number): Node {
    this.i++; // {
    const entries = new Map<string, Node>();
    this.ws();
    if (this.s[this.i] === '}') {
      this.i++;
      return { t: 'obj', entries };
    }
    for (;;) {
      this.ws();
      if (this.s[this.i] !== '"') throw new JsonSyntaxError(`expected a key at ${this.i}`);
      const key = this.string();
      this.ws();
      if (this.s[this.i] !== ':') throw new JsonSyntaxError(`expected ':' at ${this.i}`);
      this.i++;
      this.ws();
      // Map.set on an existing key keeps the first position but takes the new value, like a Python dict.
      entries.set(key, this.value(depth + 1));
      this.ws();
      const c = this.s[this.i++];
      if (c === '}') return { t: 'obj', entries };
      if (c !== ',') throw new JsonSyntaxError(`expected ',' or '}' at ${this.i - 1}`);
    }
  }

  array(depth: number): Node {
    this.i++; // [
    const items: Node[] = [];
    this.ws();
    if (this.s[this.i] === ']') {
      this.i++;
      return { t: 'arr', items };
    }
    for (;;) {
      this.ws();
      items.push(this.value(depth + 1));
      this.ws();
      const c = this.s[this.i++];
      if (c === ']') return { t: 'arr', items };
      if (c !== ',') throw new JsonSyntaxError(`expected ',' or ']' at ${this.i - 1}`);
    }
  }

  string(): string {
    this.i++; // opening quote
    let out = '';
    let start = this.i;
    for (;;) {
      if (this.i >= this.s.length) throw new JsonSyntaxError('unterminated string');
      const c = this.s.charCodeAt(this.i);
      if (c === 0x22) {
        out += this.s.slice(start, this.i);
        this.i++;
        return out;
      }
      // json.loads is strict by default: raw control characters inside strings are an error.
      if (c < 0x20) throw new JsonSyntaxError(`control character in string at ${this.i}`);
      if (c !== 0x5c) {
        this.i++;
        continue;
      }
      out += this.s.slice(start, this.i);
      const e = this.s[this.i + 1];
      const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
      if (e !== undefined && e in simple) {
        out += simple[e];
        this.i += 2;
      } else if (e === 'u') {
        const hex = this.s.slice(this.i + 2, this.i + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw new JsonSyntaxError(`bad \\u escape at ${this.i}`);
        out += String.fromCharCode(parseInt(hex, 16));
        this.i += 6;
      } else {
        throw new JsonSyntaxError(`bad escape at ${this.i}`);
      }
      start = this.i;
    }
  }
}

const NAMED: Record<number, string> = { 0x22: '\\"', 0x5c: '\\\\', 0x08: '\\b', 0x0c: '\\f', 0x0a: '\\n', 0x0d: '\\r', 0x09: '\\t' };

/** Python's ensure_ascii string encoder. */
export function pythonString(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const named = NAMED[c];
    if (named === undefined && c >= 0x20 && c <= 0x7e) continue;
    out += s.slice(start, i) + (named ?? `\\u${c.toString(16).padStart(4, '0')}`);
    start = i + 1;
  }
  return out + s.slice(start) + '"';
}

/** Code-point order (Python's str comparison); JS's default sort compares UTF-16 units, which differs above U+FFFF. */
function byCodePoint(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done && y.done ? 0 : x.done ? -1 : 1;
    const d = x.value.codePointAt(0)! - y.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}

function emit(node: Node): string {
  switch (node.t) {
    case 'lit': return node.text;
    case 'str': return pythonString(node.value);
    case 'arr': return `[${node.items.map(emit).join(',')}]`;
    case 'obj': {
      const keys = [...node.entries.keys()].sort(byCodePoint);
      return `{${keys.map((k) => `${pythonString(k)}:${emit(node.entries.get(k)!)}`).join(',')}}`;
    }
  }
}
