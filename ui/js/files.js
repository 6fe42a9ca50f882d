// The files the user added: which are class videos, which one is the song, and why a file
// was rejected. Files arrive probed by Rust (drop → `files-added`, `pick_files`, `add_files`),
// each with the id commands take (the page never names a file by its path).
import { invoke } from './ipc.js';
import { t } from './i18n.js';
import { baseName, describe, explainError, videoOf } from './media.js';
import { $, button, el } from './dom.js';
import { decidePairing, matchWord, rankMatches, songsKey } from './pairing.js';

export class FileList {
  /**
   * `onChange()` runs whenever the class videos, the songs, a pairing or the selection changes.
   * `matchSongs(recordingId, songIds)` → Promise<SongMatch[]> aligns a video against several songs.
   */
  constructor(listEl, emptyEl, onChange = () => {}, matchSongs = async () => []) {
    this.listEl = listEl;
    this.emptyEl = emptyEl;
    this.onChange = onChange;
    this.matchSongs = matchSongs;
    /** @type {{path:string, id?:string, status:'checking'|'ok'|'error', info?:object, role?:string, error?:object}[]} */
    this.items = [];
    this.markedSongs = new Set(); // videos the user chose to use as songs (a reference video)
    /** class video → {key, state, song, matches}: its song when several songs were added */
    this.pairs = new Map();
    this.selectedPath = null;
  }

  /**
   * Adds paths typed by the user: shown as "checking" while Rust asks the user to confirm
   * them (a native dialog) and probes them. Declined paths disappear; Rust answers with
   * each file's canonical path, which replaces the typed one.
   */
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
    this.items = this.items.filter((it) => !(it.status === 'checking' && fresh.includes(it.path)));
    this.accept(added);
    return added;
  }

  /** Takes AddedFile[] from any source; a file added again replaces its old entry. */
  accept(added) {
    for (const a of added) {
      const item = a.ok
        ? { path: a.path, id: a.id, status: 'ok', info: a.info, role: a.role }
        : { path: a.path, status: 'error', error: a.error };
      const i = this.items.findIndex((it) => it.path === a.path);
      if (i >= 0) this.items[i] = item;
      else this.items.push(item);
    }
    this.settle();
  }

  useAsSong(path) {
    this.markedSongs.add(path);
    this.pairs.delete(path);
    if (this.selectedPath === path) this.selectedPath = null;
    this.settle();
  }

  useAsClass(path) {
    this.markedSongs.delete(path);
    this.settle();
  }

  remove(path) {
    // Rust closes what it keeps open for the file (its frame server); nothing to wait for.
    const gone = this.items.find((it) => it.path === path);
    if (gone?.id) invoke('close_pictures', { id: gone.id }).catch(() => {});
    this.items = this.items.filter((it) => it.path !== path);
    this.markedSongs.delete(path);
    this.pairs.delete(path);
    if (this.selectedPath === path) this.selectedPath = null;
    this.settle();
  }

  /** The teacher picks the song for a class video (or changes the one found). */
  pair(videoPath, songPath) {
    const p = this.pairs.get(videoPath);
    if (!p || !this.songs().some((s) => s.path === songPath)) return;
    this.pairs.set(videoPath, { ...p, state: 'user', song: songPath });
    this.render();
    this.onChange();
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

  /** The id Rust gave a usable file (commands take ids, never paths). */
  idOf(path) {
    const it = this.usable(path);
    return it ? it.id : null;
  }

  pathOf(id) {
    const it = this.items.find((i) => i.id === id);
    return it ? it.path : null;
  }

  /** Every usable song: the sound-only files and the videos marked as songs. */
  songs() {
    return this.items.filter((it) => it.status === 'ok' && (it.role === 'song' || this.markedSongs.has(it.path)));
  }

  /** Usable files with a picture that are not songs. */
  classVideos() {
    return this.items.filter((it) => it.status === 'ok' && !this.markedSongs.has(it.path) && it.role !== 'song' && videoOf(it.info));
  }

  /** The song a class video is analysed against: the only song, or its pairing's (else null). */
  songFor(videoPath) {
    const songs = this.songs();
    if (songs.length === 1) return songs[0].path;
    const p = this.pairs.get(videoPath);
    return p && p.song && songs.some((s) => s.path === p.song) ? p.song : null;
  }

  /** How a class video got its song: a state of PAIR_STATES (pairing.js). */
  pairState(videoPath) {
    const n = this.songs().length;
    if (n === 0) return 'none';
    if (n === 1) return 'only';
    const p = this.pairs.get(videoPath);
    return p ? p.state : 'checking';
  }

  /** The usable (probed, accepted) file at `path`, if any. */
  usable(path) {
    return this.items.find((i) => i.path === path && i.status === 'ok') || null;
  }

  infoOf(path) {
    const it = this.usable(path);
    return it ? it.info : null;
  }

  // Pairs each class video with its song (several songs) and picks a class video to show.
  settle() {
    this.matchAll();
    const classes = this.classVideos();
    if (!classes.some((c) => c.path === this.selectedPath)) this.selectedPath = classes.length ? classes[0].path : null;
    this.render();
    this.onChange();
  }

  /** With several songs, asks Rust which song each class video holds (once per set of songs). */
  matchAll() {
    const songs = this.songs().map((s) => s.path);
    if (songs.length < 2) return;
    const key = songsKey(songs);
    for (const c of this.classVideos()) {
      const p = this.pairs.get(c.path);
      if (p && p.key === key) continue;
      // A choice the teacher made stays while its song is still there.
      const kept = p && p.state === 'user' && songs.includes(p.song) ? p.song : null;
      this.pairs.set(c.path, { key, state: kept ? 'user' : 'checking', song: kept, matches: [] });
      // Rust names files by id; the list keeps paths.
      this.matchSongs(c.id, songs.map((s) => this.idOf(s))).then(
        (matches) => this.matched(c.path, key, (matches || []).map((m) => ({ ...m, song: this.pathOf(m.song) }))),
        (error) => this.matched(c.path, key, songs.map((song) => ({ song, verdict: null, confidence: 0, error }))),
      );
    }
  }

  matched(videoPath, key, matches) {
    const p = this.pairs.get(videoPath);
    if (!p || p.key !== key) return; // the songs changed meanwhile: a newer request answers
    const decided = p.state === 'user' ? { state: 'user', song: p.song } : decidePairing(matches);
    this.pairs.set(videoPath, { key, ...decided, matches: rankMatches(matches) });
    this.render();
    this.onChange();
  }

  roleOf(it) {
    if (it.status !== 'ok') return 'none';
    if (this.markedSongs.has(it.path) || it.role === 'song') return 'song';
    return videoOf(it.info) ? 'class' : 'none';
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
      if (role === 'class') {
        head.append(button('use-song', 'small ghost', () => this.useAsSong(it.path), { text: t('file.use_song'), label: t('file.use_song_for', { name }) }));
      } else if (this.markedSongs.has(it.path)) {
        head.append(button('use-class', 'small ghost', () => this.useAsClass(it.path), { text: t('file.use_class'), label: t('file.use_class_for', { name }) }));
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
      if (role === 'class' && this.songs().length > 1) li.append(this.renderPair(it.path, name));
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

  /** A class video's song when there are several: how it was found, and a choice to change it. */
  renderPair(videoPath, name) {
    const state = this.pairState(videoPath);
    const p = this.pairs.get(videoPath) || { matches: [] };
    const box = el('div', 'pair');
    box.dataset.pair = state;
    const select = document.createElement('select');
    select.dataset.action = 'pair';
    select.setAttribute('aria-label', t('pair.choose_for', { name }));
    select.disabled = state === 'checking';
    const byPath = new Map(p.matches.map((m) => [m.song, m]));
    const ordered = [...p.matches.map((m) => m.song), ...this.songs().map((s) => s.path).filter((s) => !byPath.has(s))];
    const options = ordered.map((song) => {
      const o = document.createElement('option');
      o.value = song;
      const m = byPath.get(song);
      o.textContent = m ? `${baseName(song)} · ${t(`match.${matchWord(m)}`)}` : baseName(song);
      return o;
    });
    const song = this.songFor(videoPath);
    if (!song) {
      const none = document.createElement('option');
      none.value = '';
      none.textContent = t('pair.pick');
      options.unshift(none);
    }
    select.replaceChildren(...options);
    select.value = song || '';
    select.addEventListener('change', () => select.value && this.pair(videoPath, select.value));
    box.append(el('span', 'pair-state', t(`pair.${state}`)), select);
    return box;
  }
}
