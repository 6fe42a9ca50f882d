// The names the Rust side sends, written out from its types by src-tauri/contract.rs.
// Do not edit: tests/ipc.rs fails while this differs, and BEATSYNC_BLESS=1 rewrites it.
export const EVENTS = Object.freeze({
  filesAdded: 'files-added',
  jobChanged: 'job-changed',
  jobRemoved: 'job-removed',
  previewState: 'preview-state',
  storeRecovered: 'store-recovered',
});
export const JOB_STATES = Object.freeze([
  'queued',
  'analyzing',
  'analyzed',
  'exporting',
  'done',
  'failed',
  'cancelled',
]);
export const STAGES = Object.freeze([
  'decode',
  'features',
  'search',
  'refine',
  'align',
  'analyse',
  'plan',
  'export',
  'finish',
  'verify',
  'done',
  'interrupted',
  'stopping',
]);
export const ERROR_CODES = Object.freeze([
  'not_found',
  'unreadable',
  'not_media',
  'no_audio',
  'no_video',
  'empty',
  'unsupported',
  'too_short',
  'no_match',
  'cancelled',
  'media',
  'output_dir',
  'disk_full',
  'output_write',
  'input_changed',
  'invalid_request',
  'nothing_to_export',
  'needs_confirmation',
  'store_locked',
  'store',
  'job_not_found',
  'invalid_state',
  'store_io',
  'stalled',
  'crashed',
  'internal',
  'no_audio_device',
  'invalid_argument',
  'open_failed',
]);
export const VERDICTS = Object.freeze([
  'sure',
  'unsure',
]);
export const START_CUTS = Object.freeze([
  'smart_cut',
  'edit_list',
  'keyframe',
]);
export const PLAYS_LAYOUTS = Object.freeze([
  'one_video',
  'split',
]);
export const BETWEEN = Object.freeze([
  'recorded',
  'silence',
]);
