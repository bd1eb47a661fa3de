// How a record's field value reads in text: kept apart from the logger (no winston to load).

/** A field value as text records show it: bare when it can be, else JSON. */
export function formatValue(value: unknown): string {
  if (value !== null && typeof value === 'object') {
    const isFlat = Array.isArray(value) && value.every((v) => v === null || typeof v !== 'object');
    if (!isFlat) return JSON.stringify(value);
  }
  const text = Array.isArray(value) ? value.join(',') : String(value);
  return /[\s"=]/.test(text) || text === '' ? JSON.stringify(text) : text;
}
