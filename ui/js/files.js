// The files the user added: which are class videos, which one is the song, and why a file
// was rejected. Files arrive probed by Rust (drop → `files-added`, `pick_files`, `add_files`).
import { invoke } from './ipc.js';
import { t } from './i18n.js';
import { baseName, describe, explainError, songScore, videoOf } from './media.js';
import { $, button, el } from './dom.js';

export class FileList {
  /** `onChange()` runs whenever the set of class videos, the song or the selection changes. */
  constructor(listEl, emptyEl, onChange = () => {}) {
    this.listEl = listEl;
    this.emptyEl = emptyEl;
    this.onChange = onChange;
    /** @type {{path:string, status:'checking'|'ok'|'error', info?:object, role?:string, error?:object}[]} */
    this.items = [];
    this.songPath = null;
    this.selectedPath = null;
  }

  /** Adds paths typed by the user: shown as "checking" until Rust has probed them. */
  async addPaths(paths) {
    const fresh = paths.filter((p) => p && !this.items.some((it) => it.path === p));
    if (!fresh.length) return [];
    this.items.push(...fresh.map((path) => ({ path, status: 'checking' })));
    this.render();
    let added;
    try {
      added = await invoke('add_files', { paths: fresh });
    } catch (error) {
      added = fresh.map((path) => ({ path, ok: false, error }));
    }
    this.accept(added);
    return added;
  }

  /** Takes AddedFile[] from any source; a file added again replaces its old entry. */
  accept(added) {
    for (const a of added) {
      const item = a.ok
        ? { path: a.path, status: 'ok', info: a.info, role: a.role }
        : { path: a.path, status: 'error', error: a.error };
      const i = this.items.findIndex((it) => it.path === a.path);
      if (i >= 0) this.items[i] = item;
      else this.items.push(item);
    }
    this.settle();
  }

  useAsSong(path) {
    this.songPath = path;
    if (this.selectedPath === path) this.selectedPath = null;
    this.settle();
  }

  remove(path) {
    this.items = this.items.filter((it) => it.path !== path);
    if (this.songPath === path) this.songPath = null;
    if (this.selectedPath === path) this.selectedPath = null;
    this.settle();
  }

  select(path) {
    this.selectedPath = path;
    this.settle();
  }

  /** Marks a class video as the one shown (a job picked in the job list) without side effects. */
  highlight(path) {
    if (!this.classVideos().some((c) => c.path === path)) return;
    this.selectedPath = path;
    this.render();
  }

  song() {
    return this.items.find((it) => it.path === this.songPath) || null;
  }

  /** Usable files with a picture, other than the song. */
  classVideos() {
    return this.items.filter((it) => it.status === 'ok' && it.path !== this.songPath && videoOf(it.info));
  }

  infoOf(path) {
    const it = this.items.find((i) => i.path === path && i.status === 'ok');
    return it ? it.info : null;
  }

  // Picks the song if none is chosen (the engine's best "song" file) and a class video to show.
  settle() {
    if (!this.song()) {
      const songs = this.items.filter((it) => it.status === 'ok' && it.role === 'song');
      songs.sort((a, b) => songScore(b.info) - songScore(a.info));
      this.songPath = songs.length ? songs[0].path : null;
    }
    const classes = this.classVideos();
    if (!classes.some((c) => c.path === this.selectedPath)) this.selectedPath = classes.length ? classes[0].path : null;
    this.render();
    this.onChange();
  }

  roleOf(it) {
    if (it.status !== 'ok') return 'none';
    if (it.path === this.songPath) return 'song';
    return videoOf(it.info) ? 'class' : 'spare';
  }

  render() {
    this.emptyEl.hidden = this.items.length > 0;
    // Once there are files the drop area shrinks, leaving room for the job list.
    $('drop').classList.toggle('compact', this.items.length > 0);
    // Keep keyboard focus on the same control across a re-render.
    const active = document.activeElement;
    const focusKey = active && this.listEl.contains(active) ? [active.closest('li').dataset.path, active.dataset.action] : null;
    this.listEl.replaceChildren(...this.items.map((it) => this.renderItem(it)));
    if (focusKey) {
      const li = [...this.listEl.children].find((l) => l.dataset.path === focusKey[0]);
      const target = li && (li.querySelector(`[data-action="${focusKey[1]}"]`) || li.querySelector('button'));
      if (target) target.focus();
    }
  }

  renderItem(it) {
    const li = el('li', 'file');
    li.dataset.path = it.path;
    li.dataset.status = it.status;
    const role = this.roleOf(it);
    li.dataset.role = role;
    const name = baseName(it.path);
    li.title = it.path;

    const head = el('div', 'file-head');
    if (role === 'class') {
      const b = button('select', 'name linkish', () => this.select(it.path), { text: name, label: t('file.show', { name }) });
      b.setAttribute('aria-pressed', String(it.path === this.selectedPath));
      head.append(b);
      if (it.path === this.selectedPath) li.classList.add('selected');
    } else {
      head.append(el('span', 'name', name));
    }
    if (it.status !== 'checking') {
      if (role === 'class' || role === 'spare') {
        head.append(button('use-song', 'small ghost', () => this.useAsSong(it.path), { text: t('file.use_song'), label: t('file.use_song_for', { name }) }));
      }
      head.append(button('remove', 'icon ghost', () => this.remove(it.path), { text: '×', label: t('file.remove_for', { name }) }));
    }
    li.append(head);

    if (it.status === 'checking') {
      li.append(el('span', 'details', t('file.checking')));
    } else if (it.status === 'ok') {
      li.append(el('span', `role role-${role}`, t(`role.${role}`)));
      const details = el('span', 'details', describe(it.info));
      details.title = details.textContent;
      li.append(details);
    } else {
      const { code, headline, detail, fix } = explainError(it.error);
      li.classList.add('error');
      li.dataset.code = code;
      li.append(el('span', 'err', headline));
      li.append(el('span', 'details', `${code}: ${detail}`));
      li.append(el('span', 'details fix', fix));
    }
    return li;
  }
}
