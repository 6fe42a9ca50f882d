// The UI's copy of the job store and what a job's state means for the views. Rust's store is
// the source of truth: jobs arrive from `job-changed` events and from commands' answers, which
// can cross on the way, so for each job the copy with the highest `rev` is kept (docs/ipc.md).
// Pure apart from the words (tested in node).
import { t } from './i18n.js';

const FINISHED = new Set(['done', 'failed', 'cancelled']);
const BUSY = new Set(['queued', 'analyzing', 'exporting']);

/** Finished jobs are history. */
export function isFinished(job) {
  return FINISHED.has(job.state);
}

/** Waiting or working: it can be cancelled, and cannot be exported now. */
export function isBusy(job) {
  return BUSY.has(job.state);
}

/** A runner is working on it right now. */
export function isWorking(job) {
  return job.state === 'analyzing' || job.state === 'exporting';
}

/** Analysed with an unsure verdict the teacher has not confirmed: it must not be exported yet. */
export function awaitsConfirmation(job) {
  return !!(job && job.analysis && job.analysis.verdict === 'unsure' && !job.options.song_confirmed);
}

/** Analysed, not busy, and not waiting for the teacher to confirm the song: ready to export. */
export function isExportable(job) {
  return !!(job && job.analysis && !isBusy(job) && !awaitsConfirmation(job));
}

/** Newest first, like list_jobs. */
export function byNewest(a, b) {
  return (b.created_at || 0) - (a.created_at || 0);
}

/** Whether `incoming` may replace `known`, another copy of the same job: not older than it. */
export function isNewer(incoming, known) {
  if (!known) return true;
  if (!Number.isFinite(incoming.rev) || !Number.isFinite(known.rev)) return true;
  return incoming.rev >= known.rev;
}

/** What the job is doing inside its state, in words ('' for nothing; the name if it has no words). */
export function stageText(job) {
  if (!job.stage) return '';
  const key = `stage.${job.stage}`;
  return t(key) === key ? job.stage : t(key);
}

/** Every job the UI knows, each as the newest copy Rust sent. */
export class JobStore {
  constructor() {
    this.jobs = new Map();
    this.removed = new Set(); // ids are never reused: a late copy of a removed job stays out
  }

  /** Takes a job from an event or an answer; returns whether it was kept (not older). */
  accept(job) {
    if (!job || !job.id || this.removed.has(job.id)) return false;
    if (!isNewer(job, this.jobs.get(job.id))) return false;
    this.jobs.set(job.id, job);
    return true;
  }

  remove(id) {
    this.removed.add(id);
    return this.jobs.delete(id);
  }

  get(id) {
    return this.jobs.get(id);
  }

  has(id) {
    return this.jobs.has(id);
  }

  all() {
    return [...this.jobs.values()];
  }

  /** The newest job for a class video against a song, or null. */
  forPair(recording, song) {
    return this.all().filter((j) => j.dance_path === recording && j.bgm_path === song).sort(byNewest)[0] || null;
  }
}
