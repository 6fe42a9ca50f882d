// The "see it" panel for one class video: analysis progress or error, then the result in
// words, the alternatives, the two waveforms on a canvas with beats, trim and playhead,
// zoom/scroll, nudging and the listening controls. State lives in the job (from Rust);
// this class only keeps the view (zoom, scroll) and in-flight edits.
import { t } from './i18n.js';
import { baseName, explainError } from './media.js';
import { formatEta } from './jobs.js';
import { awaitsConfirmation, stageText } from './jobstate.js';
import { $, button } from './dom.js';
import { candidateLabel, confidenceWord, frameSeconds, nudgeForKey, nudged } from './nudge.js';
import {
  beatsInPlay, chosenPlays, formatClock, formatSeconds, moveTrim, placementOf, playChoices, playPlacement, playsOf,
  songToRec, timeToX, trimOf, xToTime,
} from './timeline.js';
import { PictureView, sparseEvery, stripSlots, thumbnailUrl } from './picture.js';
import { ZOOM_STEP, clampView, drawOverview, drawTimeline, fitView, revealTime, scrollView, zoomView } from './waveform.js';

// Keyboard steps for the trim handles (s): arrows, with Shift.
const TRIM_STEP = 0.1;
const TRIM_STEP_BIG = 1;

export class AnalysisView {
  /**
   * deps = { waveform(fileId) → Promise<Waveform>, frameRate(job) → Promise<number|null>,
   *          setPlacement(job, offset_s, rate), setTrim(job, start_s, end_s), retry(job),
   *          confirmSong(job), preview, frameStep(fileId, at_s, frames) → Promise<FrameSpan>,
   *          filmstrip(fileId, everyS) → Promise<Filmstrip>, setMirror(on),
   *          setPlays(job, [{index, included, offset_s}]) }
   */
  constructor(deps) {
    this.deps = deps;
    this.job = null;
    this.pending = null; // {recording, song} (paths) while the analysis is being requested
    this.view = null; // {start_s, px_per_s}, null = fit the whole recording
    this.rec = null;
    this.song = null;
    this.fps = null;
    this.dragTrim = null; // the trim while an edge is being dragged
    this.dragFrom = null; // … and where the drag started
    this.canvas = $('timeline-canvas');
    this.box = $('timeline');
    this.picture = new PictureView({ box: $('picture'), img: $('picture-img') });
    this.strip = null; // the filmstrip of the shown recording, once made
    this.frameS = null; // the length of the frame last stepped to (the one-frame nudge uses it)
    this.selectedPlay = 0; // with several plays: the one the nudges act on
    this.bind();
    new ResizeObserver(() => this.draw()).observe(this.box);
    // The canvas reads the theme's colours when drawing: redraw when the system theme flips.
    window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => this.draw());
  }

  /** Shows a job (or, with none yet, the pair being analysed; or nothing). */
  show(job, pending = null) {
    const changed = (job && job.id) !== (this.job && this.job.id);
    // While an analysed job exports, events only move its progress: the result
    // view does not show that, so it is not redrawn (keeps the UI responsive).
    const progressOnly = !changed && job && this.job && job.analysis && pending === this.pending && sameButProgress(job, this.job);
    this.job = job;
    if (progressOnly) return;
    this.pending = pending;
    if (changed) {
      // Another video: playback of the previous one stops and the playhead starts over.
      if (this.deps.preview.playing) this.deps.preview.stop();
      this.deps.preview.position_s = 0;
      this.view = null;
      this.rec = null;
      this.song = null;
      this.fps = null;
      this.frameS = null;
      this.strip = null;
      this.dragTrim = null;
      this.selectedPlay = 0;
      this.picture.setFile(job ? job.dance_file : null);
      this.frameIndex = undefined;
      if (job) { this.load(job); this.loadFilmstrip(job); }
    }
    this.render();
  }

  async load(job) {
    const id = job.id;
    const [rec, song, fps] = await Promise.all([
      this.deps.waveform(job.dance_file).catch(() => null),
      this.deps.waveform(job.bgm_file).catch(() => null),
      this.deps.frameRate(job).catch(() => null),
    ]);
    if (!this.job || this.job.id !== id) return;
    Object.assign(this, { rec, song, fps });
    this.picture.setFile(job.dance_file, fps);
    this.render();
  }

  /**
   * Thumbnails along the recording, made in Rust in the background (cached on disk): a
   * sparse strip first, about one thumbnail per slot of the whole-recording view (it covers
   * the strip in a fraction of the time), then the dense one (every 2 s, for zooming in),
   * which reuses the sparse one's pictures.
   */
  async loadFilmstrip(job) {
    const a = this.job && this.job.analysis;
    const sparse = sparseEvery(this.rec ? this.rec.duration_s : a && a.overlap.dance_end_s, this.width());
    for (const everyS of sparse > 2 ? [sparse, 2] : [2]) {
      const strip = await this.deps.filmstrip(job.dance_file, everyS).catch(() => null);
      if (!this.job || this.job.id !== job.id) return;
      if (!strip) continue;
      this.strip = { ...strip, fileId: job.dance_file };
      this.draw();
    }
  }

  /** The frame rate the one-frame nudge uses: the length of the frame shown, once stepped to. */
  frameRate() {
    return this.frameS ? 1 / this.frameS : this.fps;
  }

  setMirror(on) {
    this.mirror = !!on;
    this.picture.setMirror(this.mirror);
    $('mirror').setAttribute('aria-pressed', String(this.mirror));
  }

  /** One frame back or on (`n` = -1 / 1), by the recording's own frame times; stops playback. */
  async stepFrame(n) {
    if (!this.ready()) return;
    const job = this.job;
    const pv = this.deps.preview;
    if (pv.playing) await pv.stop();
    const span = await this.deps.frameStep(job.dance_file, pv.position_s, n).catch(() => null);
    if (!span || !this.job || this.job.id !== job.id) return;
    this.frameS = span.end_s - span.start_s;
    // The middle of the frame: the millisecond the picture is asked at is inside it.
    this.seek((span.start_s + span.end_s) / 2, span.index);
    this.renderResult();
  }

  recDuration() {
    if (this.rec) return this.rec.duration_s;
    const a = this.job && this.job.analysis;
    return a ? a.overlap.dance_end_s : 1;
  }

  /** With several plays of the song, each play (else []). */
  plays() {
    return playsOf(this.job);
  }

  /** The selected play, or null with one play. */
  play() {
    const plays = this.plays();
    if (!plays.length) return null;
    this.selectedPlay = Math.min(Math.max(0, this.selectedPlay), plays.length - 1);
    return plays[this.selectedPlay];
  }

  /** The placement shown and nudged: the selected play's with several plays. */
  placement() {
    const play = this.play();
    return play ? playPlacement(play) : placementOf(this.job);
  }

  trim() {
    if (this.dragTrim) return this.dragTrim;
    // Several plays: automatically from the first exported play to the end of the last.
    const kept = this.plays().filter((p) => p.included);
    if (kept.length) {
      const lead = (this.job.options && this.job.options.lead_in_s) || 0;
      const auto = { start_s: Math.max(0, kept[0].start_s - lead), start_reason: 'song_start', end_s: kept.at(-1).end_s, end_reason: 'song_end' };
      return trimOf({ ...this.job, trim: this.job.trim || auto }, null, this.recDuration());
    }
    return trimOf(this.job, this.placement(), this.recDuration());
  }

  render() {
    const job = this.job;
    $('view-empty').hidden = !!(job || this.pending);
    $('view-body').hidden = !(job || this.pending);
    if (!job && !this.pending) return;

    const recording = job ? job.dance_path : this.pending.recording;
    const song = job ? job.bgm_path : this.pending.song;
    $('view-title').textContent = baseName(recording);
    $('view-song').textContent = t('view.with_song', { song: baseName(song) });

    const state = job ? job.state : 'queued';
    const hasResult = !!(job && job.analysis);
    const progress = $('view-progress');
    progress.hidden = hasResult || state === 'failed' || state === 'cancelled';
    if (!progress.hidden) {
      const p = job && state === 'analyzing' ? job.progress : 0;
      $('view-progress-bar').value = Math.round(100 * p);
      $('view-progress-bar').setAttribute('aria-label', t('view.analysing'));
      const parts = [state === 'analyzing' ? t('view.analysing') : t('view.waiting')];
      if (state === 'analyzing') {
        parts.push(`${Math.round(100 * p)} %`);
        if (stageText(job)) parts.push(stageText(job));
        if (formatEta(job.eta_s)) parts.push(formatEta(job.eta_s));
      }
      $('view-progress-text').textContent = parts.join(' · ');
      this.drawOverview();
    }

    const err = $('view-error');
    // A failed export keeps its analysis: the error shows above the result then.
    err.hidden = !(job && (state === 'failed' || (state === 'cancelled' && !hasResult)));
    if (!err.hidden) {
      const e = state === 'cancelled' ? { headline: t('view.cancelled'), detail: '', fix: '', code: 'cancelled' } : explainError(job.error);
      err.dataset.code = e.code;
      $('view-error-headline').textContent = e.headline;
      $('view-error-message').textContent = e.detail;
      $('view-error-fix').textContent = e.fix;
    }

    $('view-result').hidden = !hasResult;
    if (hasResult) this.renderResult();
  }

  renderResult() {
    const a = this.job.analysis;
    const p = this.placement();
    const word = confidenceWord(a.confidence, a.verdict);
    // Not sure of the song: everything is shown to listen with, export waits for the teacher's word.
    $('view-unsure').hidden = !awaitsConfirmation(this.job);
    $('sum-offset').textContent = formatSeconds(p.offset_s, { signed: true });
    $('sum-rate').textContent = `×${p.rate.toFixed(4)}`;
    const conf = $('sum-confidence');
    conf.textContent = t(`confidence.${word}`, { pct: Math.round(a.confidence * 100) });
    conf.dataset.word = word;
    $('sum-tempo').textContent = a.bpm ? t('summary.bpm', { bpm: Math.round(a.bpm * 10) / 10 }) : t('summary.no_bpm');

    const plays = this.plays();
    // The alternatives are the whole recording's; with several plays each play is nudged instead.
    $('candidates-box').hidden = plays.length > 0;
    $('sum-play-box').hidden = plays.length === 0;
    if (plays.length) $('sum-play').textContent = t('plays.which', { n: this.selectedPlay + 1, count: plays.length });
    this.renderPlays(plays);

    const best = a.candidates.length ? a.candidates[0].offset_s : a.offset_s;
    const buttons = a.candidates.map((c, i) => {
      const label = candidateLabel(c.offset_s, best, a.bpm);
      const text = `${t(label.key, label.vars)} · ${formatSeconds(c.offset_s, { signed: true })}`;
      const b = button(`cand-${i}`, 'small ghost cand', () => this.place(c.offset_s), { text });
      b.dataset.offset = String(c.offset_s);
      b.setAttribute('aria-pressed', String(Math.abs(c.offset_s - p.offset_s) < 0.0005));
      return b;
    });
    const box = $('candidates');
    const focused = box.contains(document.activeElement) ? document.activeElement.dataset.action : null;
    box.replaceChildren(...buttons);
    if (focused) box.querySelector(`[data-action="${focused}"]`)?.focus();

    const tr = this.trim();
    $('trim-info').textContent = `${t('trim.starts', { at: formatClock(tr.start_s), why: t(`trim.why_start.${tr.start_reason}`) })} · ${t('trim.ends', { at: formatClock(tr.end_s), why: t(`trim.why_end.${tr.end_reason}`) })}`;

    const frame = formatSeconds(frameSeconds(this.frameRate()), { digits: 4 });
    for (const b of document.querySelectorAll('.nudge[data-nudge$="frame"]')) b.title = `${t(b.dataset.i18nTitle)} (${frame})`;

    const inRec = plays.length
      ? plays.filter((q) => q.included).flatMap((q) => beatsInPlay(a.beats_s, q))
      : a.beats_s.filter((b) => { const r = songToRec(b, p); return r >= 0 && r <= this.recDuration(); });
    this.box.dataset.beatCount = String(inRec.length);
    this.box.dataset.playCount = String(plays.length);
    this.box.dataset.selectedPlay = plays.length ? String(this.selectedPlay) : '';
    this.box.dataset.downbeatCount = String(a.downbeats_s.length);
    this.box.dataset.offset = String(p.offset_s);
    this.box.dataset.rate = String(p.rate);
    this.box.dataset.trimStart = String(tr.start_s);
    this.box.dataset.trimEnd = String(tr.end_s);
    this.renderPlayer();
  }

  /** While analysing: the recording's waveform, so there is something to look at already. */
  drawOverview() {
    const canvas = $('view-progress-wave');
    canvas.hidden = !this.rec;
    if (!this.rec) return;
    const w = canvas.clientWidth || 600;
    const h = canvas.clientHeight || 80;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    drawOverview(ctx, this.rec, w, h, getComputedStyle(document.documentElement).getPropertyValue('--wave-rec').trim());
  }

  /** Play button, position readout, playhead and the parts of the canvas that follow it. */
  renderPlayer() {
    const pv = this.deps.preview;
    const play = $('play');
    play.textContent = pv.playing ? t('preview.stop') : t('preview.play');
    play.setAttribute('aria-pressed', String(pv.playing));
    $('position').textContent = formatClock(pv.position_s);
    this.box.dataset.playhead = String(pv.position_s);
    this.picture.show(pv.position_s, pv.playing, pv.speed);
    if (pv.playing) this.frameIndex = undefined;
    $('frame-info').textContent = this.frameIndex !== undefined && !pv.playing ? t('picture.frame', { n: this.frameIndex }) : '';
    if (pv.playing && this.view) this.view = revealTime(this.view, pv.position_s, this.recDuration(), this.width());
    this.draw();
  }

  width() {
    return this.box.clientWidth || 600;
  }

  currentView() {
    const w = this.width();
    return this.view ? clampView(this.view, this.recDuration(), w) : fitView(this.recDuration(), w);
  }

  draw() {
    this.draws = (this.draws || 0) + 1;
    this.box.dataset.draws = String(this.draws);
    if (!this.job || !this.job.analysis || $('view-result').hidden) return;
    const w = this.width();
    const h = this.box.clientHeight || 220;
    const dpr = window.devicePixelRatio || 1;
    if (this.canvas.width !== Math.round(w * dpr) || this.canvas.height !== Math.round(h * dpr)) {
      this.canvas.width = Math.round(w * dpr);
      this.canvas.height = Math.round(h * dpr);
    }
    const ctx = this.canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const css = getComputedStyle(document.documentElement);
    const color = (name) => css.getPropertyValue(name).trim();
    const view = this.currentView();
    const a = this.job.analysis;
    const tr = this.trim();
    const plays = this.plays().map((q, i) => ({ ...q, placement: playPlacement(q), selected: i === this.selectedPlay }));
    drawTimeline(ctx, {
      width: w, height: h, view, rec: this.rec, song: this.song, placement: this.placement(), plays,
      beats: a.beats_s, downbeats: a.downbeats_s, trim: tr, playhead_s: this.deps.preview.position_s,
      colors: { lane: color('--lane'), rec: color('--wave-rec'), song: color('--wave-song'), beat: color('--beat'), dim: color('--dim'), label: color('--muted'), playhead: color('--playhead'), play: color('--accent-soft'), playEdge: color('--accent') },
      labels: { rec: t('timeline.recording'), song: t('timeline.song') },
    });

    for (const [el, s, key] of [[$('trim-start'), tr.start_s, 'start'], [$('trim-end'), tr.end_s, 'end']]) {
      const x = timeToX(s, view);
      // Kept 6 px inside the box so an edge at the very end can still be grabbed.
      el.style.left = `${Math.min(w - 6, Math.max(6, x))}px`;
      el.classList.toggle('off', x < 0 || x > w);
      el.setAttribute('aria-valuemin', '0');
      el.setAttribute('aria-valuemax', this.recDuration().toFixed(1));
      el.setAttribute('aria-valuenow', s.toFixed(3));
      el.setAttribute('aria-valuetext', `${formatClock(s)}, ${t(`trim.why_${key}.${tr[`${key}_reason`]}`)}`);
    }

    this.drawStrip(view, w);
    this.positionPlays(plays, view, w);

    const visible = w / view.px_per_s;
    const room = this.recDuration() - visible;
    const scroll = $('scroll');
    scroll.disabled = room <= 0;
    scroll.value = room > 0 ? String(Math.round((view.start_s / room) * 1000)) : '0';
  }

  /** The filmstrip above the waveforms: in each slot the thumbnail of the time at its left edge. */
  drawStrip(view, w) {
    const el = $('filmstrip');
    const strip = this.strip;
    el.hidden = !strip;
    if (!strip) return;
    const h = el.clientHeight || 40;
    const slotW = Math.max(24, Math.round((h * strip.width) / Math.max(1, strip.height)));
    const slots = stripSlots(view, w, slotW, strip.every_s, strip.thumbnails.length)
      .filter(({ x }) => x < view.px_per_s * (this.recDuration() - view.start_s));
    const imgs = [...el.children];
    while (imgs.length < slots.length) {
      const img = document.createElement('img');
      img.alt = '';
      el.append(img);
      imgs.push(img);
    }
    imgs.forEach((img, i) => {
      const slot = slots[i];
      img.hidden = !slot;
      if (!slot) return;
      const src = thumbnailUrl(this.picture.base, strip.fileId, slot.index, strip.every_s);
      if (img.getAttribute('src') !== src) img.src = src;
      img.dataset.index = String(slot.index);
      img.style.left = `${slot.x}px`;
      img.style.width = `${slotW}px`;
    });
    el.dataset.count = String(slots.length);
  }

  // ---- actions ---------------------------------------------------------------------------

  place(offsetS, rate = this.placement().rate) {
    const job = this.job;
    // Show the new placement at once; the Job that Rust returns confirms it.
    this.job = { ...job, options: { ...job.options, offset_s: offsetS, rate } };
    this.renderResult();
    this.deps.setPlacement(job, offsetS, rate);
  }

  nudge(delta) {
    if (!this.ready()) return;
    const play = this.play();
    if (!play) {
      this.place(nudged(this.placement().offset_s, delta));
      return;
    }
    // A play left out keeps no offset of its own (only exported plays are stored).
    if (!play.included) return;
    this.setPlays(this.plays().map((q) => (q.index === play.index ? { ...q, offset_s: nudged(q.offset_s, delta) } : q)));
  }

  /** The plays changed (a nudge, a play left out or back in): shown at once, then sent. */
  setPlays(plays) {
    const job = this.job;
    this.job = { ...job, options: { ...job.options, plays: chosenPlays(plays) } };
    this.renderResult();
    this.deps.setPlays(job, playChoices(plays));
  }

  /** Leaves play `i` out of the export, or puts it back; the last exported play stays. */
  toggleIncluded(i) {
    const plays = this.plays();
    const play = plays[i];
    if (!play || (play.included && plays.filter((q) => q.included).length === 1)) return;
    this.setPlays(plays.map((q) => (q.index === i ? { ...q, included: !q.included } : q)));
  }

  /** Selects play `i` (clamped); `focus` its block, `seek` the playhead to its start. */
  selectPlay(i, { focus = false, seek = false } = {}) {
    const plays = this.plays();
    if (!plays.length) return;
    this.selectedPlay = Math.min(Math.max(0, i), plays.length - 1);
    const play = plays[this.selectedPlay];
    if (this.view) this.view = revealTime(this.currentView(), play.start_s, this.recDuration(), this.width());
    this.renderResult();
    if (seek) this.seek(play.start_s);
    if (focus) $('plays').children[this.selectedPlay]?.querySelector('.play-pick').focus();
  }

  /** Previous / next play (`step` -1 / 1) from the selected one, the playhead to its start. */
  jumpPlay(step) {
    if (!this.ready() || !this.plays().length) return;
    this.selectPlay(this.selectedPlay + step, { seek: true });
  }

  /** A block per play over the timeline: its name and offset (selects it), and its switch. */
  renderPlays(plays) {
    const box = $('plays');
    box.hidden = plays.length === 0;
    $('play-nav').hidden = plays.length === 0;
    $('plays-help').hidden = plays.length === 0;
    while (box.children.length > plays.length) box.lastChild.remove();
    while (box.children.length < plays.length) box.append(this.playBlock());
    const kept = plays.filter((q) => q.included).length;
    const a = this.job.analysis;
    plays.forEach((q, i) => {
      const block = box.children[i];
      const selected = i === this.selectedPlay;
      const beats = beatsInPlay(a.beats_s, q);
      Object.assign(block.dataset, {
        index: String(i), included: String(q.included), selected: String(selected), offset: String(q.offset_s),
        start: String(q.start_s), end: String(q.end_s), beats: String(beats.length), firstBeat: beats.length ? String(beats[0]) : '',
      });
      block.setAttribute('aria-label', t('plays.name', { n: i + 1 }));
      const offset = formatSeconds(q.offset_s, { signed: true });
      const pick = block.querySelector('.play-pick');
      pick.textContent = `${t('plays.name', { n: i + 1 })} · ${offset}`;
      pick.setAttribute('aria-pressed', String(selected));
      pick.setAttribute('aria-label', t('plays.pick_label', { n: i + 1, offset, from: formatClock(q.start_s), to: formatClock(q.end_s) }));
      const sw = block.querySelector('.play-switch');
      sw.setAttribute('aria-checked', String(q.included));
      sw.textContent = q.included ? t('plays.in') : t('plays.out');
      sw.setAttribute('aria-label', t('plays.include', { n: i + 1 }));
      sw.disabled = q.included && kept === 1;
      sw.title = sw.disabled ? t('plays.last_one') : t('plays.include_tip');
    });
  }

  playBlock() {
    const block = document.createElement('div');
    block.className = 'play-block';
    block.setAttribute('role', 'group');
    const index = () => Number(block.dataset.index);
    const pick = button(null, 'play-pick', () => this.selectPlay(index()));
    pick.addEventListener('keydown', (ev) => {
      if (ev.altKey || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
      const n = this.plays().length;
      const to = { ArrowLeft: index() - 1, ArrowUp: index() - 1, ArrowRight: index() + 1, ArrowDown: index() + 1, Home: 0, End: n - 1 }[ev.key];
      if (to === undefined) return;
      ev.preventDefault();
      ev.stopPropagation();
      this.selectPlay(to, { focus: true });
    });
    // Tabbing to a block that is off screen scrolls it into view.
    pick.addEventListener('focus', () => {
      const play = this.plays()[index()];
      if (!play || !this.view) return;
      this.view = revealTime(this.currentView(), play.start_s, this.recDuration(), this.width());
      this.draw();
    });
    const sw = button(null, 'play-switch', () => this.toggleIncluded(index()));
    sw.setAttribute('role', 'switch');
    block.append(pick, sw);
    return block;
  }

  /**
   * The blocks follow the view (zoom, scroll). A block out of view waits at the side, faint
   * (still reachable by Tab; focus scrolls to it), as the trim edges do.
   */
  positionPlays(plays, view, w) {
    const box = $('plays');
    const minW = 56;
    plays.forEach((q, i) => {
      const block = box.children[i];
      if (!block) return;
      const x0 = timeToX(q.start_s, view);
      const x1 = timeToX(q.end_s, view);
      const off = x1 < 0 || x0 > w;
      const left = off ? (x1 < 0 ? 0 : w - minW) : Math.max(0, x0);
      const right = off ? left + minW : Math.min(w, x1);
      block.style.left = `${left}px`;
      block.style.width = `${Math.max(0, right - left)}px`;
      block.classList.toggle('off', off);
    });
  }

  zoom(factor, anchorX = this.width() / 2) {
    if (!this.ready()) return;
    const w = this.width();
    const view = this.currentView();
    const ph = timeToX(this.deps.preview.position_s, view);
    // Zoom around the playhead when it is on screen and no mouse position is given.
    const anchor = anchorX === null ? (ph >= 0 && ph <= w ? ph : w / 2) : anchorX;
    this.view = zoomView(view, factor, anchor, this.recDuration(), w);
    this.draw();
  }

  fit() {
    this.view = null;
    this.draw();
  }

  ready() {
    return !!(this.job && this.job.analysis);
  }

  /** Moves the playhead; `frameIndex`: the frame stepped to (named under the picture). */
  seek(s, frameIndex = undefined) {
    if (!this.ready()) return;
    this.frameIndex = frameIndex;
    const clamped = Math.min(Math.max(0, s), this.recDuration());
    this.deps.preview.seek(this.job.id, clamped);
  }

  togglePlay() {
    if (!this.ready()) return;
    this.deps.preview.toggle(this.job.id, this.deps.preview.position_s);
  }

  commitTrim(tr) {
    this.dragTrim = null;
    const job = this.job;
    this.job = { ...job, options: { ...job.options, trim_start_s: tr.start_s, trim_end_s: tr.end_s } };
    this.renderResult();
    this.deps.setTrim(job, tr.start_s, tr.end_s);
  }

  /** Global shortcuts (Space, nudges, zoom); returns true when the key was used. */
  handleKey(ev) {
    if (!this.ready() || ev.metaKey) return false;
    if ((ev.altKey || ev.ctrlKey) && !ev.shiftKey && (ev.key === 'ArrowLeft' || ev.key === 'ArrowRight')) {
      this.stepFrame(ev.key === 'ArrowLeft' ? -1 : 1);
      return true;
    }
    if (ev.ctrlKey || ev.altKey) return false;
    const delta = nudgeForKey(ev, this.frameRate());
    if (delta !== null) { this.nudge(delta); return true; }
    if (ev.key === '+' || ev.key === '=') { this.zoom(ZOOM_STEP, null); return true; }
    if (ev.key === '-' || ev.key === '_') { this.zoom(1 / ZOOM_STEP, null); return true; }
    if (ev.code === 'Space') { this.togglePlay(); return true; }
    if ((ev.key === 'PageUp' || ev.key === 'PageDown') && this.plays().length) {
      this.jumpPlay(ev.key === 'PageUp' ? -1 : 1);
      return true;
    }
    return false;
  }

  bind() {
    $('play').addEventListener('click', () => this.togglePlay());
    $('zoom-in').addEventListener('click', () => this.zoom(ZOOM_STEP, null));
    $('zoom-out').addEventListener('click', () => this.zoom(1 / ZOOM_STEP, null));
    $('zoom-fit').addEventListener('click', () => this.fit());
    $('view-retry').addEventListener('click', () => this.job && this.deps.retry(this.job));
    $('view-confirm').addEventListener('click', () => this.job && this.deps.confirmSong(this.job));
    $('frame-prev').addEventListener('click', () => this.stepFrame(-1));
    $('frame-next').addEventListener('click', () => this.stepFrame(1));
    $('mirror').addEventListener('click', () => this.deps.setMirror(!this.mirror));
    $('play-prev').addEventListener('click', () => this.jumpPlay(-1));
    $('play-next').addEventListener('click', () => this.jumpPlay(1));
    for (const b of document.querySelectorAll('.nudge')) {
      b.addEventListener('click', () => {
        const n = b.dataset.nudge;
        const sign = n.startsWith('-') ? -1 : 1;
        this.nudge(n.endsWith('frame') ? sign * frameSeconds(this.frameRate()) : Number(n));
      });
    }
    $('scroll').addEventListener('input', (ev) => {
      const w = this.width();
      const view = this.currentView();
      const room = this.recDuration() - w / view.px_per_s;
      this.view = clampView({ start_s: (Number(ev.target.value) / 1000) * room, px_per_s: view.px_per_s }, this.recDuration(), w);
      this.draw();
    });

    // Ctrl+wheel zooms at the mouse; a plain wheel scrolls through time.
    // With the whole recording in view a plain wheel scrolls the page as usual.
    this.box.addEventListener('wheel', (ev) => {
      if (!this.ready()) return;
      const view = this.currentView();
      const room = this.recDuration() - this.width() / view.px_per_s;
      if (!ev.ctrlKey && room <= 0) return;
      ev.preventDefault();
      const x = ev.clientX - this.box.getBoundingClientRect().left;
      if (ev.ctrlKey) this.zoom(ev.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP, x);
      else {
        this.view = scrollView(view, ev.deltaX || ev.deltaY, this.recDuration(), this.width());
        this.draw();
      }
    }, { passive: false });

    // A click on the waveforms puts the playhead there.
    this.canvas.addEventListener('pointerdown', (ev) => {
      const x = ev.clientX - this.box.getBoundingClientRect().left;
      this.seek(xToTime(x, this.currentView()));
    });

    // Arrows on the focused timeline move the playhead (Shift: further).
    this.box.addEventListener('keydown', (ev) => {
      // With Alt or Ctrl the arrows step frames (the window's keys, handleKey).
      if (ev.target !== this.box || !this.ready() || ev.altKey || ev.ctrlKey || ev.metaKey) return;
      const step = ev.shiftKey ? 5 : 1;
      if (ev.key === 'ArrowLeft') this.seek(this.deps.preview.position_s - step);
      else if (ev.key === 'ArrowRight') this.seek(this.deps.preview.position_s + step);
      else if (ev.key === 'Home') this.seek(0);
      else return;
      ev.preventDefault();
    });

    for (const handle of [$('trim-start'), $('trim-end')]) this.bindTrimHandle(handle);
  }

  bindTrimHandle(handle) {
    const edge = handle.dataset.edge;
    handle.addEventListener('pointerdown', (ev) => {
      if (!this.ready()) return;
      ev.preventDefault();
      ev.stopPropagation();
      handle.setPointerCapture(ev.pointerId);
      handle.focus();
      this.dragTrim = this.trim();
      this.dragFrom = this.dragTrim;
    });
    handle.addEventListener('pointermove', (ev) => {
      if (!this.dragTrim || !handle.hasPointerCapture(ev.pointerId)) return;
      const x = ev.clientX - this.box.getBoundingClientRect().left;
      this.dragTrim = moveTrim(this.dragTrim, edge, xToTime(x, this.currentView()), this.recDuration());
      this.draw();
    });
    handle.addEventListener('pointerup', (ev) => {
      if (!this.dragTrim) return;
      handle.releasePointerCapture(ev.pointerId);
      // A click without a move leaves the automatic trim alone.
      if (this.dragTrim === this.dragFrom) this.dragTrim = null;
      else this.commitTrim(this.dragTrim);
    });
    // Tabbing to an edge that is off screen scrolls it into view.
    handle.addEventListener('focus', () => {
      if (!this.ready() || this.dragTrim) return;
      const tr = this.trim();
      this.view = revealTime(this.currentView(), edge === 'start' ? tr.start_s : tr.end_s, this.recDuration(), this.width());
      this.draw();
    });
    handle.addEventListener('keydown', (ev) => {
      if (!this.ready() || ev.altKey || ev.ctrlKey || ev.metaKey) return;
      const step = ev.shiftKey ? TRIM_STEP_BIG : TRIM_STEP;
      const tr = this.trim();
      const now = edge === 'start' ? tr.start_s : tr.end_s;
      let to;
      if (ev.key === 'ArrowLeft' || ev.key === 'ArrowDown') to = now - step;
      else if (ev.key === 'ArrowRight' || ev.key === 'ArrowUp') to = now + step;
      else if (ev.key === 'Home') to = 0;
      else if (ev.key === 'End') to = this.recDuration();
      else return;
      ev.preventDefault();
      ev.stopPropagation();
      const moved = moveTrim(tr, edge, Math.round(to * 1000) / 1000, this.recDuration());
      this.commitTrim(moved);
    });
  }
}

/** Whether two versions of a job differ only in their progress reporting (and so their revision). */
export function sameButProgress(a, b) {
  const strip = ({ progress, stage, eta_s, rev, ...rest }) => rest;
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}
