// Stand-in for window.__TAURI__ in headless Chromium. Tests program answers
// with window.__mock.on(cmd, fn) and read window.__mock.calls.
(() => {
  // Answers every app start needs; tests replace them with window.__mock.on(…).
  // Settings outlive a reload, as Rust's store does (sessionStorage stands in for it).
  const KEY = '__mock_settings';
  const settingsStore = {
    get: () => ({ out_dir: '', language: null, balance: 0, mirror: true, mirror_export: false, ...JSON.parse(sessionStorage.getItem(KEY) || '{}') }),
    set: (patch) => { sessionStorage.setItem(KEY, JSON.stringify({ ...settingsStore.get(), ...patch })); return settingsStore.get(); },
  };
  const handlers = {
    get_settings: () => settingsStore.get(),
    set_settings: ({ settings }) => settingsStore.set({ language: settings.language, balance: settings.balance, ...('mirror' in settings ? { mirror: settings.mirror } : {}), ...('mirror_export' in settings ? { mirror_export: settings.mirror_export } : {}) }),
    list_jobs: () => [],
    close_pictures: () => true,
    page_ready: () => null,
  };
  const listeners = {};
  const calls = [];
  const emitted = [];
  window.__mock = {
    calls,
    settingsStore,
    emitted,
    on(cmd, fn) { handlers[cmd] = fn; },
    emit(event, payload) { for (const h of listeners[event] || []) h({ event, payload }); },
  };
  window.__TAURI__ = {
    core: {
      async invoke(cmd, args) {
        calls.push({ cmd, args, listening: Object.keys(listeners) });
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
