// Pure helpers over the engine's MediaInfo (no DOM), so they test on their own.
import { t } from './i18n.js';

export function videoOf(info) {
  return info.streams.find((s) => s.kind === 'video') || null;
}

export function audioOf(info) {
  return info.streams.find((s) => s.kind === 'audio') || null;
}

/** 83.4 → "1:23", 3723 → "1:02:03". */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

function channels(n) {
  return n === 1 ? t('ch.1') : n === 2 ? t('ch.2') : t('ch.n', { n });
}

/** One line describing what is in the file, in the current language. */
export function describe(info) {
  const parts = [t('info.duration', { d: formatDuration(info.duration_s) })];
  const v = videoOf(info);
  if (v) {
    parts.push(t('info.video', { codec: v.codec.toUpperCase(), w: v.width, h: v.height, fps: Math.round(v.frame_rate * 100) / 100 }));
    if (v.rotation) parts.push(t('info.rotated', { deg: v.rotation }));
  }
  const a = audioOf(info);
  parts.push(a ? t('info.audio', { codec: a.codec.toUpperCase(), rate: a.sample_rate / 1000, ch: channels(a.channels) }) : t('info.noaudio'));
  return parts.join(' · ');
}

/**
 * A user-facing error: a short sentence in the UI language, the engine's own message
 * (which says what is wrong and what to do) and our advice for that kind of error.
 */
export function explainError(err) {
  const code = err && err.code ? err.code : 'internal';
  const known = (prefix) => t(`${prefix}.${code}`) !== `${prefix}.${code}`;
  return {
    code,
    headline: known('err') ? t(`err.${code}`) : t('err.generic'),
    detail: err && err.message ? err.message : '',
    fix: known('fix') ? t(`fix.${code}`) : t('fix.generic'),
  };
}

/** The class video's frame rate (for ±1 frame nudges), or null. */
export function frameRateOf(info) {
  const v = info && videoOf(info);
  return v && v.frame_rate > 0 ? v.frame_rate : null;
}

/**
 * How likely a file is the clean song: a file with no picture wins, then better sound
 * (sample rate, channels). Used only among files the engine marked as possible songs.
 */
export function songScore(info) {
  const a = audioOf(info);
  if (!a || !a.decodable) return -1;
  return (videoOf(info) ? 0 : 100) + a.sample_rate / 48000 + Math.min(a.channels, 2) / 2;
}

export function baseName(path) {
  return String(path).split(/[\\/]/).filter(Boolean).pop() || String(path);
}

/**
 * A long path shortened from the left, keeping whole trailing folder names:
 * "/home/me/Videos/BeatSync" → "…/Videos/BeatSync". The end says the most about a folder.
 */
export function shortPath(path, max = 24) {
  const p = String(path);
  if (p.length <= max) return p;
  const parts = p.split(/(?=[\\/])/);
  let out = parts.pop();
  while (parts.length && out.length + parts[parts.length - 1].length + 1 <= max) out = parts.pop() + out;
  return `…${out}`;
}
