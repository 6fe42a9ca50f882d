// The list of files the user added: state + rendering. Every file is probed
// by the Rust side; the list shows what it is, or why it cannot be used.
import { invoke } from './ipc.js';
import { t } from './i18n.js';
import { baseName, describe, explainError, roleOf } from './media.js';

export class FileList {
  constructor(listEl, emptyEl) {
    this.listEl = listEl;
    this.emptyEl = emptyEl;
    /** @type {{path:string, status:'checking'|'ok'|'error', info?:object, error?:object}[]} */
    this.items = [];
  }

  /** Adds paths (ignoring ones already present) and probes each. */
  async add(paths) {
    const fresh = paths.filter((p) => p && !this.items.some((it) => it.path === p));
    const items = fresh.map((path) => ({ path, status: 'checking' }));
    this.items.push(...items);
    this.render();
    await Promise.all(items.map(async (it) => {
      try {
        it.info = await invoke('probe_media', { path: it.path });
        it.status = 'ok';
      } catch (e) {
        it.error = e;
        it.status = 'error';
      }
      this.render();
    }));
    return items;
  }

  render() {
    this.emptyEl.hidden = this.items.length > 0;
    this.listEl.replaceChildren(...this.items.map((it) => renderItem(it)));
  }
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function renderItem(it) {
  const li = el('li', 'file');
  li.dataset.path = it.path;
  li.dataset.status = it.status;
  li.append(el('span', 'name', baseName(it.path)));
  if (it.status === 'checking') {
    li.append(el('span', 'details', t('file.checking')));
  } else if (it.status === 'ok') {
    const role = roleOf(it.info);
    li.dataset.role = role || 'none';
    li.append(el('span', 'role', t(role ? `role.${role}` : 'role.unknown')));
    li.append(el('span', 'details', describe(it.info)));
  } else {
    const { code, headline, detail } = explainError(it.error);
    li.classList.add('error');
    li.dataset.code = code;
    li.append(el('span', 'err', headline));
    li.append(el('span', 'details', `${code}: ${detail}`));
  }
  return li;
}
