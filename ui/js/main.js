// Entry point: holds the app state (files, jobs from Rust, settings), subscribes to the
// events and wires the panels together. Every change comes from an event or a command's
// answer; nothing polls.
import { invoke, listen } from './ipc.js';
import { detectLanguage, language, setLanguage, t, translatePage } from './i18n.js';
import { FileList } from './files.js';
import { JobList, overallProgress, startCutNote } from './jobs.js';
import { JobStore, awaitsConfirmation, isExportable, isFinished } from './jobstate.js';
import { AnalysisView } from './analysis.js';
import { Preview } from './preview.js';
import { explainError, frameRateOf, shortPath } from './media.js';
import { BETWEEN, EVENTS, PLAYS_LAYOUTS } from './contract.js';
import { playsOf } from './timeline.js';
import { $ } from './dom.js';

// Waveform resolution: 5 ms per peak shows the onsets against the beat markers when zoomed in
// for nudging, while a 10-minute recording stays at 240 000 numbers over IPC. Finer placement
// than that is seen in the beat markers, which are drawn from exact song times.
const PEAKS_PER_S = 200;

const jobs = new JobStore();
let batch = new Set(); // ids of the current export run, for the overall progress line
let settings = { out_dir: '', language: null, balance: 0, mirror: true, mirror_export: false };
let viewJobId = null; // a job picked in the job list; otherwise the selected class video's job
const requested = new Set(); // "recording\nsong" path pairs whose `analyze` call is in flight
const waveforms = new Map();
const frameRates = new Map();
let jobsLoaded = false; // until list_jobs answers, a pair's existing job is not known yet

/** Shows a command's error: our sentence, the engine's message and what to do. */
function showError(err) {
  const e = explainError(err);
  showNotice([e.headline, e.detail, e.fix].filter(Boolean).join(' '), e.code);
}

function showNotice(text, code = '') {
  $('notice-text').textContent = text;
  $('notice').dataset.code = code;
  $('notice').hidden = false;
}

async function call(cmd, args) {
  try {
    return await invoke(cmd, args);
  } catch (e) {
    showError(e);
    return undefined;
  }
}

const files = new FileList($('files'), $('files-empty'), () => {
  viewJobId = null;
  ensureAnalyses();
  refresh();
}, (recording, songs) => invoke('match_songs', { dance: recording, songs }));

const preview = new Preview({
  statusEl: $('preview-status'),
  onChange: () => view.renderPlayer(),
  onError: showError,
});

const view = new AnalysisView({
  preview,
  waveform: (id) => {
    if (!waveforms.has(id)) {
      const p = invoke('waveform', { id, peaks_per_s: PEAKS_PER_S });
      p.catch(() => waveforms.delete(id)); // try again next time
      waveforms.set(id, p);
    }
    return waveforms.get(id);
  },
  frameRate: async (job) => {
    const known = frameRateOf(files.infoOf(job.dance_path));
    if (known) return known;
    const id = job.dance_file;
    if (!frameRates.has(id)) frameRates.set(id, invoke('probe_media', { id }).then(frameRateOf, () => null));
    return frameRates.get(id);
  },
  setPlacement: async (job, offset_s, rate) => upsert(await call('set_placement', { id: job.id, offset_s, rate })),
  setTrim: async (job, start_s, end_s) => upsert(await call('set_trim', { id: job.id, start_s, end_s })),
  setPlays: async (job, plays) => upsert(await call('set_plays', { id: job.id, plays })),
  retry: async (job) => upsert(await call('retry_job', { id: job.id })),
  confirmSong: async (job) => upsert(await call('confirm_song', { id: job.id })),
  frameStep: (id, at_s, frames) => invoke('frame_step', { id, at_s, frames }),
  filmstrip: (id, everyS) => invoke('filmstrip', { id, every_s: everyS }),
  setMirror: (on) => { view.setMirror(on); saveSettings({ mirror: on }); },
});

const jobList = new JobList({
  activeEl: $('jobs'), historyEl: $('history'), emptyEl: $('jobs-empty'),
  overallBox: $('jobs-overall-box'), overallEl: $('jobs-overall'), overallBar: $('jobs-overall-bar'), statsEl: $('history-stats'), clearEl: $('clear-history'),
}, {
  cancel: async (job) => upsert(await call('cancel_job', { id: job.id })),
  retry: async (job) => upsert(await call('retry_job', { id: job.id })),
  open: (job) => call('open_path', { id: job.id }),
  reveal: (job) => call('reveal_path', { id: job.id }),
  select: (job) => { viewJobId = job.id; files.highlight(job.dance_path); refresh(); },
});

/** Jobs from events and answers: each kept only if not older than the copy already here. */
function upsert(...list) {
  for (const job of list.flat()) jobs.accept(job);
  refresh();
}

/** The newest job for a class video against a song. */
function jobFor(recording, song) {
  return jobs.forPair(recording, song);
}

function currentJob() {
  if (viewJobId && jobs.has(viewJobId)) return jobs.get(viewJobId);
  const song = files.selectedPath && files.songFor(files.selectedPath);
  return song ? jobFor(files.selectedPath, song) : null;
}

/** Analysis starts by itself for every class video that has no job against its song yet. */
function ensureAnalyses() {
  if (!jobsLoaded) return;
  for (const c of files.classVideos()) {
    const song = files.songFor(c.path);
    if (!song) continue;
    const key = `${c.path}\n${song}`;
    if (jobFor(c.path, song) || requested.has(key)) continue;
    requested.add(key);
    call('analyze', { dance: c.id, bgm: files.idOf(song) }).then((job) => {
      requested.delete(key);
      upsert(job);
    });
  }
}

function batchJobs() {
  return [...batch].map((id) => jobs.get(id)).filter(Boolean);
}

/** A new export run starts a new batch once the previous one has finished. */
function addToBatch(started) {
  if (!started) return;
  if (batchJobs().every(isFinished)) batch = new Set();
  for (const j of started) batch.add(j.id);
  upsert(started);
}

function refresh() {
  const job = currentJob();
  const song = files.selectedPath && files.songFor(files.selectedPath);
  view.show(job, !job && song ? { recording: files.selectedPath, song } : null);
  jobList.render(jobs.all(), batchJobs(), job && job.id);
  renderExport(job);
  renderEmptyView();
}

/** The empty view says what is still missing: the song, the class video, both, or a pairing. */
function renderEmptyView() {
  const classes = files.classVideos().length;
  const songs = files.songs().length;
  const pairing = classes && songs > 1 && files.selectedPath ? files.pairState(files.selectedPath) : null;
  const key = classes && !songs ? 'view.need_song' : songs && !classes ? 'view.need_class'
    : pairing === 'checking' ? 'view.pairing' : pairing === 'choose' || pairing === 'none' ? 'view.need_pair' : 'view.empty';
  for (const [id, part] of [['view-empty-title', 'title'], ['view-empty-hint', 'hint']]) {
    $(id).dataset.i18n = `${key}_${part}`;
    $(id).textContent = t(`${key}_${part}`);
  }
  // The first-launch guide and the sample, until the first file arrives.
  const first = files.items.length === 0;
  for (const id of ['guide', 'try-sample', 'sample-hint']) $(id).hidden = !first;
}

function renderExport(job) {
  $('out-dir').textContent = settings.out_dir ? shortPath(settings.out_dir, 22) : t('export.no_folder');
  $('out-dir').classList.toggle('none', !settings.out_dir);
  $('out-dir').title = settings.out_dir || '';
  $('export-one').disabled = !isExportable(job);
  const n = files.classVideos().filter((c) => files.songFor(c.path)).length;
  $('export-all').textContent = t('export.all', { n });
  $('export-all').disabled = n === 0;

  // The batch's progress also sits next to the export buttons, where the user started it.
  const o = overallProgress(batchJobs());
  $('export-progress').hidden = o.total === 0 || o.finished === o.total;
  $('export-progress-text').textContent = t('jobs.overall', o);
  $('export-progress-bar').value = o.percent;

  renderPlaysExport(job);

  const done = job && job.state === 'done' && job.output_path;
  $('view-done').hidden = !done;
  if (done) $('view-done-path').textContent = t('job.saved', { path: job.output_path });
  const note = done ? startCutNote(job.report) : null;
  $('view-done-note').hidden = !note;
  $('view-done-note').textContent = note || '';
}

/**
 * With several plays: one video or one clip per play, and what is heard between plays in one
 * video. The job keeps the choice (Export all exports each job with its own); the names are
 * the Rust types' (contract.js).
 */
function renderPlaysExport(job) {
  const box = $('plays-export');
  box.hidden = !(job && job.analysis && playsOf(job).length);
  if (box.hidden) return;
  const o = job.options || {};
  // The options are made once per language: remaking them on every job event would close a
  // list the user has open.
  const fill = (select, names, prefix, value) => {
    if (select.dataset.lang !== language()) {
      select.replaceChildren(...names.map((n) => new Option(t(`${prefix}.${n}`), n)));
      select.dataset.lang = language();
    }
    if (select.value !== value) select.value = value;
  };
  fill($('plays-layout'), PLAYS_LAYOUTS, 'plays_layout', o.layout || PLAYS_LAYOUTS[0]);
  fill($('plays-between'), BETWEEN, 'between', o.between || BETWEEN[0]);
  // Once exporting or exported, the options are the export's.
  const fixed = job.state === 'exporting' || job.state === 'done';
  $('plays-layout').disabled = fixed;
  $('plays-between').disabled = fixed || $('plays-layout').value !== 'one_video';
}

async function setPlaysLayout() {
  const job = currentJob();
  if (!job) return;
  const layout = $('plays-layout').value;
  const between = $('plays-between').value;
  upsert(await call('set_plays_layout', { id: job.id, layout, between }));
}

/** The output folder is kept by Rust; without one yet, the user picks it first. */
async function outDir() {
  if (settings.out_dir) return settings.out_dir;
  return pickFolder();
}

async function pickFolder() {
  const dir = await call('pick_folder', {});
  if (dir) settings = { ...settings, out_dir: dir };
  refresh();
  return dir || null;
}

async function exportOne() {
  const job = currentJob();
  const dir = job && (await outDir());
  if (!dir) return;
  addToBatch(await call('export', { ids: [job.id] }));
}

/**
 * Every class video against its song: analysed ones export now, the rest analyse then export.
 * A video without a song chosen, or whose song the analysis was not sure of and the teacher has
 * not confirmed, is left out and named in a notice (Rust also holds such a job back itself).
 */
async function exportAll() {
  const plan = exportPlan();
  const dir = (plan.ready.length || plan.rest.size) && (await outDir());
  if (dir) {
    const started = [];
    if (plan.ready.length) started.push(...((await call('export', { ids: plan.ready })) || []));
    for (const [song, recordings] of plan.rest) {
      started.push(...((await call('export_all', { dances: recordings, bgm: files.idOf(song) })) || []));
    }
    addToBatch(started);
  }
  const skipped = [];
  if (plan.unpaired) skipped.push(t('export.skipped_unpaired', { n: plan.unpaired }));
  if (plan.unconfirmed) skipped.push(t('export.skipped_unsure', { n: plan.unconfirmed }));
  if (skipped.length) showNotice(skipped.join(' '), 'needs_confirmation');
}

/** What Export all does with each class video (files by id, songs by path). */
function exportPlan() {
  const plan = { ready: [], rest: new Map(), unpaired: 0, unconfirmed: 0 };
  for (const c of files.classVideos()) {
    const song = files.songFor(c.path);
    const j = song && jobFor(c.path, song);
    if (!song) plan.unpaired += 1;
    else if (awaitsConfirmation(j)) plan.unconfirmed += 1;
    else if (isExportable(j)) plan.ready.push(j.id);
    else if (!(j && j.state === 'exporting')) plan.rest.set(song, [...(plan.rest.get(song) || []), c.id]);
  }
  return plan;
}

/** The demo class video and song, made in Rust and added like a drop; the analysis follows. */
async function trySample() {
  const button = $('try-sample');
  button.disabled = true;
  $('sample-status').textContent = t('sample.making');
  try {
    const added = await call('try_sample', {});
    if (added && added.length) files.accept(added);
  } finally {
    button.disabled = false;
    $('sample-status').textContent = '';
  }
}

async function showAbout() {
  const info = await call('about', {});
  if (!info) return;
  $('about-version').textContent = info.version;
  $('about-ffmpeg').textContent = info.ffmpeg;
  $('about-data').textContent = info.data_dir || t('about.unknown');
  $('about-logs').textContent = info.log_dir || t('about.unknown');
  $('about').showModal();
}

/** The export's mirror option (a display matrix: Rust reads it from the settings) and its caveat. */
function showMirrorExport(on) {
  $('mirror-export').checked = on;
  $('mirror-export-note').hidden = !on;
}

/** Preferences live in Rust's store under the app's data folder (none in the webview's storage). */
async function saveSettings(change) {
  settings = { ...settings, ...change };
  const saved = await call('set_settings', { settings: { language: settings.language, balance: settings.balance, mirror: settings.mirror, mirror_export: settings.mirror_export } });
  if (saved) settings = saved;
}

/** Keys for the timeline anywhere, except while typing or where the key has its own job. */
function onKey(ev) {
  const el = ev.target;
  if (el instanceof HTMLInputElement && el.type === 'text') return;
  if (ev.code === 'Space' && el.closest && el.closest('button, input, select, textarea, a, [role="slider"]')) return;
  if (view.handleKey(ev)) ev.preventDefault();
}

async function init() {
  setLanguage(detectLanguage());
  translatePage();

  // Subscribe before asking for the state, so no change falls between the two.
  await Promise.all([
    listen(EVENTS.filesAdded, (added) => files.accept(added)),
    listen(EVENTS.jobChanged, (job) => upsert(job)),
    listen(EVENTS.jobRemoved, ({ id }) => { jobs.remove(id); batch.delete(id); refresh(); }),
    listen(EVENTS.previewState, (s) => preview.handleEvent(s)),
    listen(EVENTS.storeRecovered, ({ moved_to }) => showNotice(t('store.recovered', { path: moved_to }), 'store_recovered')),
    // Rust handles the drop itself; these only light up the drop area meanwhile.
    listen('tauri://drag-enter', () => $('drop').classList.add('over')),
    listen('tauri://drag-leave', () => $('drop').classList.remove('over')),
    listen('tauri://drag-drop', () => $('drop').classList.remove('over')),
  ]);
  // Files the app was launched with wait in Rust until the page listens.
  call('page_ready', {});

  const [listed, saved] = await Promise.all([call('list_jobs', {}), call('get_settings', {})]);
  if (saved) settings = saved;
  if (settings.language) {
    setLanguage(settings.language);
    translatePage();
  }
  preview.balance = settings.balance || 0;
  view.setMirror(settings.mirror !== false);
  showMirrorExport(!!settings.mirror_export);
  $('balance').value = String(preview.balance);
  // Jobs still working when the app closed continue; they form the current batch.
  // Events that came in meanwhile are newer than the list's copies and stay.
  for (const j of listed || []) {
    jobs.accept(j);
    if (!isFinished(j) && (j.state === 'exporting' || j.options.auto_export)) batch.add(j.id);
  }
  jobsLoaded = true;
  ensureAnalyses(); // for files handed over while the jobs were loading

  $('lang').addEventListener('click', () => {
    const next = language() === 'en' ? 'zh' : 'en';
    setLanguage(next);
    translatePage();
    files.render();
    preview.translate();
    refresh();
    view.render(); // the same job in another language: its view must be redrawn
    saveSettings({ language: next });
  });

  const input = $('path-input');
  $('add-path').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const path = input.value.trim();
    if (!path) return;
    input.value = '';
    await files.addPaths([path]);
  });
  $('pick-files').addEventListener('click', async () => {
    const added = await call('pick_files', {});
    if (added && added.length) files.accept(added);
  });
  $('try-sample').addEventListener('click', trySample);
  $('about-open').addEventListener('click', showAbout);
  $('pick-folder').addEventListener('click', pickFolder);
  $('export-one').addEventListener('click', exportOne);
  $('plays-layout').addEventListener('change', setPlaysLayout);
  $('plays-between').addEventListener('change', setPlaysLayout);
  $('mirror-export').addEventListener('change', (ev) => { showMirrorExport(ev.target.checked); saveSettings({ mirror_export: ev.target.checked }); });
  $('export-all').addEventListener('click', exportAll);
  $('view-open').addEventListener('click', () => call('open_path', { id: currentJob().id }));
  $('view-reveal').addEventListener('click', () => call('reveal_path', { id: currentJob().id }));
  $('clear-history').addEventListener('click', () => call('clear_history', {}));
  $('notice-close').addEventListener('click', () => { $('notice').hidden = true; });
  $('speed').addEventListener('change', (ev) => preview.setSpeed(Number(ev.target.value), currentJob() && currentJob().id));
  $('balance').addEventListener('change', (ev) => {
    const b = Number(ev.target.value);
    preview.setBalance(b, currentJob() && currentJob().id);
    saveSettings({ balance: b });
  });
  document.addEventListener('keydown', onKey);

  files.render();
  refresh();

  // Exposed for tests: the same path as typing a path and pressing Add.
  // `seek` moves the playhead as a click on the waveforms does.
  window.beatsync = { addPaths: (paths) => files.addPaths(paths), files, jobs, picture: view.picture, seek: (s) => view.seek(s) };
  document.body.dataset.ready = 'true';
}

init();
