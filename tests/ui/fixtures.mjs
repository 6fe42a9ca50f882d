// A plausible Rust side for the UI tests: media infos, an AlignResult (100 BPM, beats every
// 0.6 s, downbeats every 2.4 s, offset 12.345 s, alternatives one bar either side) and a
// job store that answers commands the way docs/ipc.md says, each change raising the job's
// `rev`. Progress is driven by the tests through `job-changed` events, exactly as Rust would
// send them. A file's id here is `f:` + its path (Rust's are random): commands get ids,
// and a test can still read which file was meant.
import { openUi } from './harness.mjs';

export const CLASS_INFO = {
  path: '/videos/class.mp4', container: 'mov,mp4,m4a,3gp,3g2,mj2', duration_s: 83.4, size_bytes: 1000,
  streams: [
    { kind: 'video', index: 0, codec: 'h264', width: 1920, height: 1080, frame_rate: 29.97, rotation: 90, duration_s: 83.4 },
    { kind: 'audio', index: 1, codec: 'aac', sample_rate: 48000, channels: 2, layout: 'stereo', duration_s: 83.4, decodable: true },
  ],
};
export const SONG_INFO = {
  path: '/music/song.mp3', container: 'mp3', duration_s: 200, size_bytes: 1000,
  streams: [{ kind: 'audio', index: 0, codec: 'mp3float', sample_rate: 44100, channels: 2, layout: 'stereo', duration_s: 200, decodable: true }],
};

const BEAT = 0.6;
const SONG_S = 200;
export const OFFSET = 12.345;
export const FRAME_S = 1 / 29.97;

/** Song 0..200 s placed at 12.345 s in an 83.4 s recording: the song runs past its end. */
export const ALIGN = {
  offset_s: OFFSET,
  rate: 1,
  confidence: 0.96,
  candidates: [
    { offset_s: OFFSET, score: 0.96 },
    { offset_s: OFFSET - 2.4, score: 0.71 },
    { offset_s: OFFSET + 2.4, score: 0.69 },
    { offset_s: OFFSET + 0.731, score: 0.3 },
  ],
  overlap: { dance_start_s: OFFSET, dance_end_s: 83.4, bgm_start_s: 0, bgm_end_s: 83.4 - OFFSET },
  bpm: 100,
  beats_s: Array.from({ length: Math.floor(SONG_S / BEAT) }, (_, i) => Math.round(i * BEAT * 1000) / 1000),
  downbeats_s: Array.from({ length: Math.floor(SONG_S / (4 * BEAT)) }, (_, i) => Math.round(i * 4 * BEAT * 1000) / 1000),
  timings_ms: { decode: 812, features: 140, search: 95, refine: 41 },
};

export function job(id, patch = {}) {
  return {
    id, rev: 0, dance_path: '/videos/class.mp4', bgm_path: '/music/song.mp3', dance_file: 'f:/videos/class.mp4', bgm_file: 'f:/music/song.mp3',
    state: 'queued', stage: null, progress: 0, eta_s: null, attempts: 1, max_attempts: 3,
    error: null, analysis: null,
    options: { out_dir: null, name: null, lead_in_s: 0, audio_mode: 'encode', offset_s: null, rate: null, auto_export: false, song_confirmed: false },
    output_path: null, created_at: 1700000000000, started_at: null, finished_at: null,
    ...patch,
    ...(patch.dance_path && !patch.dance_file ? { dance_file: `f:${patch.dance_path}` } : {}),
  };
}

/**
 * Runs in the page (addInitScript) after mock-ipc.js: programs every command.
 * `data` = { classInfo, songInfo, align, jobTemplate, listed, outDir }.
 */
export function backend(data) {
  const jobs = new Map((data.listed || []).map((j) => [j.id, j]));
  let n = jobs.size;
  const on = window.__mock.on;
  const pathOf = (id) => id.replace(/^f:/, '');
  let outDir = data.outDir || '';
  const emit = window.__mock.emit;
  const added = (path) => {
    if (/notes/.test(path)) return { path, ok: false, error: { code: 'not_media', message: `${path} is not a media file FFmpeg can open (wrong extension, or not audio/video at all)` } };
    if (/\.(mp3|m4a|wav)$/.test(path)) return { id: `f:${path}`, path, ok: true, role: 'song', info: { ...data.songInfo, path } };
    return { id: `f:${path}`, path, ok: true, role: 'class', info: { ...data.classInfo, path } };
  };
  // Every change of a job raises its revision, as the Rust store does.
  const save = (j) => {
    const prev = jobs.get(j.id);
    const saved = { ...j, rev: prev ? prev.rev + 1 : 0 };
    jobs.set(j.id, saved);
    return saved;
  };
  const patch = (id, p) => save({ ...jobs.get(id), ...p, options: { ...jobs.get(id).options, ...(p.options || {}) } });
  // Waveforms with a click on every beat (song time), the recording's shifted by the offset.
  const wave = (duration, shift, pps) => {
    const peaks = [];
    for (let i = 0; i < duration * pps; i++) {
      const songT = i / pps - shift;
      const phase = ((songT % 0.6) + 0.6) % 0.6;
      const inSong = songT >= 0 && songT <= 200;
      const a = inSong ? 0.25 + 0.6 * Math.exp(-phase * 12) : 0.05 + 0.03 * Math.sin(i);
      peaks.push(-a, a * 0.95);
    }
    return { peaks_per_s: pps, duration_s: duration, peaks };
  };

  window.__backend = { jobs, patch, emitJob: (id, p) => emit('job-changed', patch(id, p)) };
  window.__align = data.align;
  const settingsStore = window.__mock.settingsStore;
  on('get_settings', () => ({ ...settingsStore.get(), out_dir: outDir }));
  on('set_settings', ({ settings }) => ({ ...settingsStore.set({ language: settings.language, balance: settings.balance, ...('mirror' in settings ? { mirror: settings.mirror } : {}), ...('mirror_export' in settings ? { mirror_export: settings.mirror_export } : {}) }), out_dir: outDir }));
  on('list_jobs', () => [...jobs.values()]);
  on('add_files', ({ paths }) => paths.map(added));
  on('pick_files', () => ['/videos/class2.mp4'].map(added));
  on('pick_folder', () => { outDir = '/home/me/Exports'; return outDir; });
  on('probe_media', ({ id }) => ({ ...data.classInfo, path: pathOf(id) }));
  on('waveform', ({ id, peaks_per_s }) => ({ path: pathOf(id), ...(/\.mp3$/.test(id) ? wave(200, 0, peaks_per_s) : wave(83.4, data.align.offset_s, peaks_per_s)) }));
  on('analyze', ({ dance, bgm }) => save({ ...data.jobTemplate, id: `job-${++n}`, dance_path: pathOf(dance), bgm_path: pathOf(bgm), dance_file: dance, bgm_file: bgm, created_at: 1700000000000 + n }));
  // Several songs: each (video, song) answers with the verdict the test's table gives (else none).
  on('match_songs', ({ dance, songs }) => songs.map((song) => {
    const verdict = ((data.matches || {})[pathOf(dance)] || {})[pathOf(song)] || null;
    const confidence = verdict === 'sure' ? 0.97 : verdict === 'unsure' ? 0.5 : 0;
    return { song, verdict, confidence, offset_s: verdict ? data.align.offset_s : null, error: verdict ? null : { code: 'no_match', message: 'the song was not found in the recording' } };
  }));
  on('confirm_song', ({ id }) => patch(id, { options: { song_confirmed: true } }));
  on('set_placement', ({ id, offset_s, rate }) => patch(id, { options: { offset_s, rate } }));
  on('set_trim', ({ id, start_s, end_s }) => patch(id, { options: { trim_start_s: start_s, trim_end_s: end_s } }));
  // As Rust: the spans come from the analysis's segments, the page sends index, included, offset.
  on('set_plays', ({ id, plays }) => {
    const segments = jobs.get(id).analysis.segments;
    if (plays.length !== segments.length || plays.some((p, i) => p.index !== i || !Number.isFinite(p.offset_s))) {
      throw { code: 'invalid_argument', message: 'send every play once, in order' };
    }
    const play = (p) => {
      const s = segments[p.index];
      return { dance_start_s: s.dance_start_s, dance_end_s: s.dance_end_s, offset_s: p.offset_s, rate: s.rate, cut_before: s.cut_before };
    };
    const kept = plays.filter((p) => p.included).map(play);
    if (!kept.length) throw { code: 'invalid_argument', message: 'every play is left out' };
    return patch(id, { options: { plays: kept, plays_left_out: plays.filter((p) => !p.included).map(play) } });
  });
  on('set_plays_layout', ({ id, layout, between }) => patch(id, { options: { layout, between } }));
  on('export', ({ ids }) => ids.map((id) => patch(id, { state: 'exporting', stage: 'analyse', progress: 0, options: { out_dir: outDir } })));
  on('export_all', ({ dances, bgm }) => dances.map((dance) => save({ ...data.jobTemplate, id: `job-${++n}`, dance_path: pathOf(dance), bgm_path: pathOf(bgm), dance_file: dance, bgm_file: bgm, created_at: 1700000000000 + n, options: { ...data.jobTemplate.options, out_dir: outDir, auto_export: true } })));
  on('cancel_job', ({ id }) => patch(id, { state: 'cancelled' }));
  on('retry_job', ({ id }) => patch(id, { state: 'queued', error: null, progress: 0, attempts: jobs.get(id).attempts + 1 }));
  on('clear_history', () => {
    const gone = [...jobs.values()].filter((j) => ['done', 'failed', 'cancelled'].includes(j.state));
    for (const j of gone) { jobs.delete(j.id); emit('job-removed', { id: j.id }); }
    return gone.length;
  });
  on('open_path', () => null);
  on('reveal_path', () => null);
  on('preview_play', () => null);
  on('preview_stop', () => null);
  on('try_sample', () => ['/data/BeatSync/sample/beatsync-demo-class.mp4', '/data/BeatSync/sample/beatsync-demo-song.m4a'].map(added));
  // The picture view: 29.97 frames/s from 0, and a thumbnail every `every_s` (2 s unless asked)
  // along the 83.4-s recording.
  on('frame_step', ({ at_s, frames }) => {
    const f = 1 / 29.97;
    const index = Math.max(0, Math.min(2499, Math.floor(at_s / f + 1e-9) + frames));
    return { index, start_s: index * f, end_s: (index + 1) * f };
  });
  on('filmstrip', ({ every_s: e = 2 }) => ({ every_s: e, width: 160, height: 90, thumbnails: Array.from({ length: Math.ceil(83.4 / e) }, (_, index) => ({ index, at_s: e * index, frame_s: e * index })) }));
  on('about', () => ({ version: '0.1.0', ffmpeg: '5.1.6 (libavformat 59.27.100, libavcodec 59.37.100)', data_dir: '/data/BeatSync', log_dir: '/data/BeatSync/logs' }));
}

/** A segment of an analysis with several plays: the song from `from` s heard at `at` s for `len` s. */
export function segment(at, from, len, { cut_before = false } = {}) {
  return { dance_start_s: at, dance_end_s: at + len, offset_s: at - from, rate: 1, confidence: 0.99, cut_before };
}

/** The song played twice: from its start at 2 s (14 s), and again from its start at 22 s. */
export const TWO_PLAYS = { ...ALIGN, offset_s: 2, segments: [segment(2, 0, 14), segment(22, 0, 14)] };

/** Three plays: a restart from the same spot at 30 s, then a cut to 40 s of the song at 50 s. */
export const THREE_PLAYS = {
  ...ALIGN, offset_s: 2, segments: [segment(2, 0, 20), segment(30, 0, 20), segment(50, 40, 20, { cut_before: true })],
};

/** Which songs each class video holds, for `match_songs` (several songs added). */
export const MATCHES = {
  '/videos/class.mp4': { '/music/song.mp3': 'sure', '/videos/song-video.mp4': 'unsure' },
};

export const BACKEND_DATA = { classInfo: CLASS_INFO, songInfo: SONG_INFO, align: ALIGN, jobTemplate: job('template'), listed: [], outDir: '', matches: MATCHES };

/** A class video and the song, as a drop hands them to the page. */
export const DROPPED = [
  { id: 'f:/videos/class.mp4', path: '/videos/class.mp4', ok: true, role: 'class', info: CLASS_INFO },
  { id: 'f:/music/song.mp3', path: '/music/song.mp3', ok: true, role: 'song', info: SONG_INFO },
];

/**
 * Opens the app on this backend (`data`), drops a class video and the song, and brings the
 * analysis to its result (`align`). `opts` as openUi's.
 */
export async function openAnalysed(browser, server, { align = ALIGN, data = BACKEND_DATA, ...opts } = {}) {
  const ui = await openUi(browser, server, { ...opts, init: { fn: backend, arg: data } });
  const { page } = ui;
  await page.evaluate((added) => window.__mock.emit('files-added', added), DROPPED);
  await page.waitForFunction(() => window.__backend.jobs.size === 1);
  await page.evaluate((a) => window.__backend.emitJob('job-1', { state: 'analyzed', progress: 1, analysis: a }), align);
  await page.waitForSelector('#view-result:not([hidden])');
  return ui;
}
