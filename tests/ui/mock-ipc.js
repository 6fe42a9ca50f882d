// Stand-in for window.__TAURI__ in headless Chromium. Tests program answers
// with window.__mock.on(cmd, fn) and read window.__mock.calls.
(() => {
  // Answers every app start needs; tests replace them with window.__mock.on(…).
  const handlers = {
    get_settings: () => ({ out_dir: '', language: null, balance: 0 }),
    set_settings: ({ settings }) => settings,
    list_jobs: () => [],
  };
  const listeners = {};
  const calls = [];
  const emitted = [];
  window.__mock = {
    calls,
    emitted,
    on(cmd, fn) { handlers[cmd] = fn; },
    emit(event, payload) { for (const h of listeners[event] || []) h({ event, payload }); },
  };
  window.__TAURI__ = {
    core: {
      async invoke(cmd, args) {
        calls.push({ cmd, args });
        const h = handlers[cmd];
        if (!h) throw { code: 'internal', message: `no mock for ${cmd}` };
        return h(args);
      },
    },
    event: {
      async listen(event, handler) {
        (listeners[event] ||= []).push(handler);
        return () => { listeners[event] = listeners[event].filter((h) => h !== handler); };
      },
      async emit(event, payload) { emitted.push({ event, payload, listening: Object.keys(listeners) }); },
    },
  };
})();
