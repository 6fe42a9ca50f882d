// The job list: per-job progress, overall progress of the current batch, ETA words and the
// history. The top half is pure (tested in node); JobList below only renders.
import { t } from './i18n.js';
import { START_CUTS } from './contract.js';
import { baseName, explainError } from './media.js';
import { button, el } from './dom.js';
import { awaitsConfirmation, byNewest, isBusy, isFinished, isWorking, stageText } from './jobstate.js';

/**
 * The note a done job's export needs about its start, or null: only when it
 * starts with an edit list (its report's `start_cut`), which some players ignore.
 */
export function startCutNote(report) {
  const how = report && report.start_cut;
  if (how !== 'edit_list' || !START_CUTS.includes(how)) return null;
  const n = Number.isInteger(report.trim && report.trim.hidden_frames) ? report.trim.hidden_frames : 0;
  return t(`startCut.${how}`, { n });
}

/**
 * How much of a job's export work is done, 0..1. A job that analyses and exports
 * (auto_export) counts analysing as the first half.
 */
export function jobFraction(job) {
  const p = Math.min(1, Math.max(0, job.progress || 0));
  const both = job.options && job.options.auto_export;
  switch (job.state) {
    case 'done': case 'failed': case 'cancelled': return 1;
    case 'exporting': return both ? 0.5 + p / 2 : p;
    case 'analyzing': return both ? p / 2 : 0;
    case 'analyzed': return both ? 0.5 : 0;
    default: return 0;
  }
}

/** "3 of 8 — 42 %": finished jobs of the batch and the batch's overall percentage. */
export function overallProgress(jobs) {
  const total = jobs.length;
  if (!total) return { finished: 0, total: 0, percent: 0 };
  const finished = jobs.filter(isFinished).length;
  const sum = jobs.reduce((acc, j) => acc + jobFraction(j), 0);
  return { finished, total, percent: Math.floor((100 * sum) / total) };
}

/** Rough remaining time in words: what a person would say, not a stopwatch. */
export function formatEta(seconds) {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return '';
  if (seconds < 10) return t('eta.moment');
  if (seconds < 55) return t('eta.seconds', { n: Math.max(10, Math.round(seconds / 5) * 5) });
  const min = Math.round(seconds / 60);
  if (min < 60) return t(min === 1 ? 'eta.minute' : 'eta.minutes', { n: min });
  const h = Math.floor(min / 60);
  return t('eta.hours', { h, m: min % 60 });
}

/** Success rate of finished jobs; cancelling is the user's choice, so it is not a failure. */
export function historyStats(jobs) {
  const done = jobs.filter((j) => j.state === 'done').length;
  const failed = jobs.filter((j) => j.state === 'failed').length;
  const cancelled = jobs.filter((j) => j.state === 'cancelled').length;
  const rate = done + failed ? Math.round((100 * done) / (done + failed)) : null;
  return { done, failed, cancelled, rate };
}

// ---- rendering -------------------------------------------------------------------------

/** A job's action button; its words (`key`) are set on every update, in the current language. */
function actionButton(action, key, look, onClick) {
  const b = button(action, `small ${action} ${look}`.trim(), onClick);
  b.dataset.i18nKey = key;
  return b;
}

/**
 * Keeps one <li> per job and updates it in place, so a focused Cancel button keeps its
 * focus while progress events stream in.
 * `actions` = { cancel(job), retry(job), open(job), reveal(job), select(job) }
 */
export class JobList {
  constructor({ activeEl, historyEl, emptyEl, overallBox, overallEl, overallBar, statsEl, clearEl }, actions) {
    Object.assign(this, { activeEl, historyEl, emptyEl, overallBox, overallEl, overallBar, statsEl, clearEl, actions });
    this.rows = new Map();
  }

  /**
   * `jobs` = every job; `batch` = the jobs of the current export run (for the overall line);
   * `currentId` = the job shown in the view, marked in the list.
   */
  render(jobs, batch, currentId = null) {
    this.currentId = currentId;
    const sorted = [...jobs].sort(byNewest);
    const active = sorted.filter((j) => !isFinished(j));
    const history = sorted.filter(isFinished);
    for (const id of this.rows.keys()) {
      if (!jobs.some((j) => j.id === id)) {
        this.rows.get(id).remove();
        this.rows.delete(id);
      }
    }
    this.place(this.activeEl, active);
    this.place(this.historyEl, history);
    this.emptyEl.hidden = jobs.length > 0;

    const o = overallProgress(batch);
    this.overallBox.hidden = o.total === 0;
    this.overallEl.textContent = o.total ? t('jobs.overall', o) : '';
    this.overallBar.value = o.percent;

    const st = historyStats(history);
    this.statsEl.textContent = history.length
      ? (st.rate === null ? t('history.only_cancelled', st) : t('history.stats', st))
      : t('history.empty');
    this.clearEl.disabled = history.length === 0;
  }

  place(listEl, jobs) {
    jobs.forEach((job, i) => {
      let li = this.rows.get(job.id);
      if (!li) {
        li = this.createRow(job);
        this.rows.set(job.id, li);
      }
      li.job = job;
      updateRow(li, job);
      if (job.id === this.currentId) li.setAttribute('aria-current', 'true');
      else li.removeAttribute('aria-current');
      // Move only rows that are out of place: moving a node would drop its focus.
      if (listEl.children[i] !== li) listEl.insertBefore(li, listEl.children[i] || null);
    });
  }

  createRow(job) {
    const li = el('li', 'job');
    li.dataset.id = job.id;
    const head = el('div', 'job-head');
    const name = button(null, 'job-name linkish', () => this.actions.select(li.job));
    head.append(name, el('span', 'job-state'));
    const bar = el('progress', 'job-bar');
    bar.max = 100;
    const meta = el('div', 'job-meta');
    const err = el('div', 'job-error');
    err.setAttribute('role', 'alert');
    err.append(el('strong', 'headline'), el('span', 'message'), el('span', 'fix'));
    const out = el('div', 'job-output');
    out.append(el('span', 'path'), el('span', 'start-note'));
    const actions = el('div', 'job-actions');
    actions.append(
      actionButton('cancel', 'job.cancel', 'ghost', () => this.actions.cancel(li.job)),
      actionButton('retry', 'job.retry', '', () => this.actions.retry(li.job)),
      actionButton('open', 'job.open', '', () => this.actions.open(li.job)),
      actionButton('reveal', 'job.reveal', 'ghost', () => this.actions.reveal(li.job)),
    );
    li.append(head, bar, meta, err, out, actions);
    return li;
  }
}

function updateRow(li, job) {
  const name = baseName(job.dance_path);
  li.dataset.state = job.state;
  const nameBtn = li.querySelector('.job-name');
  nameBtn.textContent = name;
  nameBtn.setAttribute('aria-label', t('job.show', { name }));
  li.querySelector('.job-state').textContent = t(`state.${job.state}`);

  const bar = li.querySelector('.job-bar');
  const working = isWorking(job);
  bar.hidden = !working;
  bar.value = Math.round(100 * Math.min(1, Math.max(0, job.progress || 0)));
  bar.setAttribute('aria-label', t('job.progress', { name }));

  const meta = [];
  if (working) meta.push(`${bar.value} %`);
  if (working && stageText(job)) meta.push(stageText(job));
  if (working && formatEta(job.eta_s)) meta.push(formatEta(job.eta_s));
  if (job.attempts > 1 && !isFinished(job)) meta.push(t('job.attempt', { n: job.attempts, max: job.max_attempts }));
  if (job.state === 'analyzed') meta.push(t(awaitsConfirmation(job) ? 'job.unsure' : 'job.ready'));
  const metaEl = li.querySelector('.job-meta');
  metaEl.textContent = meta.join(' · ');
  metaEl.hidden = meta.length === 0;

  const err = li.querySelector('.job-error');
  err.hidden = !(job.state === 'failed' && job.error);
  if (!err.hidden) {
    const e = explainError(job.error);
    err.dataset.code = e.code;
    err.querySelector('.headline').textContent = e.headline;
    err.querySelector('.message').textContent = e.detail;
    err.querySelector('.fix').textContent = e.fix;
  }

  const out = li.querySelector('.job-output');
  out.hidden = !(job.state === 'done' && job.output_path);
  if (!out.hidden) out.querySelector('.path').textContent = t('job.saved', { path: job.output_path });
  const note = out.hidden ? null : startCutNote(job.report);
  const noteEl = out.querySelector('.start-note');
  noteEl.hidden = !note;
  noteEl.textContent = note || '';

  const show = { cancel: isBusy(job), retry: job.state === 'failed' || job.state === 'cancelled', open: !out.hidden, reveal: !out.hidden };
  for (const b of li.querySelectorAll('.job-actions button')) {
    b.hidden = !show[b.dataset.action];
    b.textContent = t(b.dataset.i18nKey);
    b.setAttribute('aria-label', `${t(b.dataset.i18nKey)}: ${name}`);
  }
}
