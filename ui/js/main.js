// Entry point: wires the page to the file list and the language switch.
import { detectLanguage, language, setLanguage, translatePage } from './i18n.js';
import { FileList } from './files.js';

const LANG_KEY = 'beatsync.lang';

function init() {
  setLanguage(localStorage.getItem(LANG_KEY) || detectLanguage());
  translatePage();

  const files = new FileList(document.getElementById('files'), document.getElementById('files-empty'));
  files.render();

  document.getElementById('lang').addEventListener('click', () => {
    const next = language() === 'en' ? 'zh' : 'en';
    setLanguage(next);
    localStorage.setItem(LANG_KEY, next);
    translatePage();
    files.render();
  });

  const input = document.getElementById('path-input');
  document.getElementById('add-path').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const path = input.value.trim();
    if (!path) return;
    input.value = '';
    await files.add([path]);
  });

  // Exposed for tests and for the drop handler: the same path a drop takes.
  window.beatsync = { addPaths: (paths) => files.add(paths), files };
  document.body.dataset.ready = 'true';
}

init();
