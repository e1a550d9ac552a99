// Which paths of its root a hub leaves out of the sync (BALUPI_HUB_IGNORE): BaluHost's own folders by default (its
// upload temp files in `.tmp`, its trash, `lost+found`, `.system`), which BaluHost hides from its users as well
// (src/files/paths.ts isSystemName, built from the same list). An ignored path is neither read from the root nor written into it, and a pi's
// new version of one is refused: syncing BaluHost's half-finished uploads and its trash to every Pi would cost their
// cards and links for files nobody opens there.
//
// Patterns, comma-separated, in the spirit of .stignore/.gitignore but smaller: `*` matches any run of characters and
// `?` one, within a path segment. A pattern without a `/` matches a file or folder of that name anywhere
// (`.Trash-*`, `*.part`); one with a `/` matches from the root (`admin/Downloads`, `/scratch`). A folder that matches
// takes everything below it along.

import { createHash } from 'node:crypto';

/** The names BaluHost hides from non-admins at any depth (its `.system`, upload `.tmp`, `lost+found`, trash). */
export const BALUHOST_SYSTEM_NAMES = ['.system', '.tmp', 'lost+found', '.Trash-*'] as const;

export const DEFAULT_HUB_IGNORE = BALUHOST_SYSTEM_NAMES;

export class IgnoreRules {
  /** The patterns as given (for status and logs). */
  readonly patterns: readonly string[];
  /** Patterns that match a single name at any depth. */
  readonly #names: RegExp[] = [];
  /** Patterns anchored at the root: one expression per segment. */
  readonly #anchored: RegExp[][] = [];

  /** Throws an Error naming the first pattern that cannot be used. */
  constructor(patterns: readonly string[]) {
    this.patterns = patterns;
    for (const raw of patterns) {
      const trimmed = raw.trim().replace(/\/+$/, '');
      const anchored = trimmed.includes('/');
      const segments = trimmed.replace(/^\//, '').split('/');
      for (const s of segments) {
        if (s === '' || s === '.' || s === '..') throw new Error(`ignore pattern ${JSON.stringify(raw)}: empty, "." or ".." segment`);
      }
      const res = segments.map(segmentRegExp);
      if (anchored) this.#anchored.push(res);
      else this.#names.push(res[0]!);
    }
  }

  get empty(): boolean {
    return this.patterns.length === 0;
  }

  /** A number naming these patterns, to notice a change across starts (state keeps numbers); never 0. */
  get fingerprint(): number {
    return createHash('sha256').update(JSON.stringify(this.patterns)).digest().readUIntBE(0, 6) + 1;
  }

  /** Whether the entry called `name` is ignored wherever it lies (the patterns without a `/`). */
  ignoresName(name: string): boolean {
    return this.#names.some((re) => re.test(name));
  }

  /** Whether the root-relative POSIX path (a file or a folder) is ignored, by itself or by a folder above it. */
  ignores(path: string): boolean {
    if (this.empty || path === '') return false;
    const segs = path.split('/');
    if (this.#names.length > 0 && segs.some((s) => this.ignoresName(s))) return true;
    return this.#anchored.some((res) => res.length <= segs.length && res.every((re, i) => re.test(segs[i]!)));
  }
}

const segmentRegExp = (glob: string): RegExp =>
  new RegExp(`^${[...glob].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/, '\\$&'))).join('')}$`, 'su');

/** The setting's text (comma-separated patterns; empty: nothing ignored) as a list, each pattern checked. */
export function parseIgnoreList(raw: string): string[] {
  const list = raw.split(',').map((p) => p.trim()).filter(Boolean);
  new IgnoreRules(list);
  return list;
}
