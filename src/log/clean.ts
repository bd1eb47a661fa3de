/**
 * The one cleaner for text a peer or a handler controls, before it goes into a log line or a
 * control reply: control characters (C0, DEL, C1) become `\xNN`, and text over `max`
 * characters is cut with a count of what was dropped.
 */
export function cleanText(text: string, max = 1024): string {
  const cut = text.length > max ? text.slice(0, max) : text;
  const safe = cut.replace(
    /[\u0000-\u001f\u007f-\u009f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
  return text.length > max ? `${safe}…[${text.length - max} more characters]` : safe;
}
