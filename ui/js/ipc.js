// The only place that talks to the Rust side. Tauri injects window.__TAURI__
// (withGlobalTauri); tests inject a mock with the same shape.

function tauri() {
  const t = window.__TAURI__;
  if (!t || !t.core) throw new Error('BeatSync must run inside its desktop window (Tauri IPC not found)');
  return t;
}

/** Calls a Rust command. Rejections carry the engine's `{code, message}`. */
export async function invoke(cmd, args = {}) {
  try {
    return await tauri().core.invoke(cmd, args);
  } catch (e) {
    if (e && typeof e === 'object' && 'code' in e) throw e;
    throw { code: 'internal', message: String(e && e.message ? e.message : e) };
  }
}

/** Subscribes to a Rust event; resolves to an unlisten function. */
export function listen(event, handler) {
  return tauri().event.listen(event, (e) => handler(e.payload));
}
