// BaluHost's two ways of writing a UTC instant (../shared/reference/baluhost-api.md §9): Python's isoformat() of an
// aware datetime (`2026-01-01T12:00:00.123000+00:00`, microseconds only when non-zero) for hand-built sync answers,
// and Pydantic's `…Z` for model fields. Both from epoch milliseconds.

function pythonIso(ms: number, suffix: string): string {
  const d = new Date(Number.isFinite(ms) ? ms : 0);
  const base = d.toISOString().slice(0, 19);
  const millis = d.getUTCMilliseconds();
  return `${base}${millis === 0 ? '' : `.${String(millis).padStart(3, '0')}000`}${suffix}`;
}

/** `datetime.isoformat()` of an aware UTC value: /sync/status, /sync/state, /sync/changes, report-folders. */
export function isoPlus00(ms: number): string {
  return pythonIso(ms, '+00:00');
}

/** Pydantic's serialisation of an aware UTC datetime: the mobile sync folders. */
export function isoZ(ms: number): string {
  return pythonIso(ms, 'Z');
}
