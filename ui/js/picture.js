// The picture view: the class video's frame at the playhead, decoded in Rust and loaded
// through the `frame:` URI scheme by file id and time (docs/ipc.md); mirrored by CSS; and
// the filmstrip of thumbnails along the timeline. One request at a time: the next frame is
// asked for when the previous one has loaded (or failed), never piling up.

/** Where the scheme lives: Tauri v2 maps `frame:` to http://frame.localhost on Windows. */
export function frameBase(userAgent = navigator.userAgent) {
  return /Windows/.test(userAgent) ? 'http://frame.localhost/' : 'frame://localhost/';
}

/** The frame at `at_s` (recording time), `width` px wide; `playing` lets Rust read ahead. */
export function frameUrl(base, fileId, at_s, width, playing) {
  const ms = Math.max(0, Math.round(at_s * 1000));
  return `${base}${encodeURIComponent(fileId)}/${ms}?w=${width}${playing ? '&play=1' : ''}`;
}

/** Thumbnail `index` of the file's strip with a thumbnail every `everyS` seconds. */
export function thumbnailUrl(base, fileId, index, everyS = 2) {
  return `${base}${encodeURIComponent(fileId)}/strip/${index}?e=${Math.round(everyS * 1000)}`;
}

/**
 * The spacing of the sparse strip asked before the dense one (`denseS` apart): about one
 * thumbnail per `slotPx` slot of a `widthPx` view of the whole `durationS` recording, as the
 * dense spacing times a power of two (so that the dense strip reuses every one of them), at
 * most 512 s; the dense spacing itself when that is no sparser (a short recording); 8 times
 * it while the duration is not known yet (a 3-min recording's view at 1000 px).
 */
export function sparseEvery(durationS, widthPx, slotPx = 72, denseS = 2) {
  if (!(durationS > 0) || !(widthPx > 0)) return denseS * 8;
  const slotS = (durationS * slotPx) / widthPx;
  const k = Math.max(0, Math.min(8, Math.ceil(Math.log2(slotS / denseS))));
  return denseS * 2 ** k;
}

/** Pixels to ask for a box `cssWidth` wide: device pixels, in steps of 64 (fewer cache misses on resize), 128…1280. */
export function pictureWidth(cssWidth, dpr = 1) {
  const px = Math.ceil((cssWidth * dpr) / 64) * 64;
  return Math.min(1280, Math.max(128, px));
}

/**
 * Which thumbnail goes in each slot of a strip `width` px wide showing `view`
 * ({start_s, px_per_s}): slots `slotW` px wide, each showing the thumbnail of the time at
 * its left edge (as the timeline draws that time there). Returns [{x, index}] for times inside the recording.
 */
export function stripSlots(view, width, slotW, everyS, count) {
  const slots = [];
  if (!(count > 0) || !(slotW > 0)) return slots;
  for (let x = 0; x < width; x += slotW) {
    const t = view.start_s + x / view.px_per_s;
    if (t < 0) continue;
    const index = Math.min(count - 1, Math.floor(t / everyS));
    slots.push({ x, index });
  }
  return slots;
}

export class PictureView {
  /** els = { box, img, info }; `now()` gives milliseconds (performance.now). */
  constructor({ box, img }, now = () => performance.now()) {
    Object.assign(this, { box, img, now });
    this.base = frameBase();
    this.fileId = null;
    this.fps = 30;
    this.loading = null; // {url, at_s, playing, t0} of the request in flight
    this.shownKey = null;
    this.want = { at_s: 0, playing: false, since: 0, speed: 1 };
    // Measured from the page (read by the E2E test; never asserted in timing).
    this.stats = { frames_playing: 0, playing_ms: 0, still_ms: [], lag_s: [], errors: 0 };
    this.playStart = null;
    img.addEventListener('load', () => this.loaded(true));
    img.addEventListener('error', () => this.loaded(false));
  }

  /** Another class video (file id) or none; `fps` paces requests while playing. */
  setFile(fileId, fps) {
    if (fps > 0) this.fps = fps;
    if (fileId === this.fileId) return;
    this.fileId = fileId;
    this.shownKey = null;
    this.box.hidden = !fileId;
    if (!fileId) this.img.removeAttribute('src');
  }

  setMirror(on) {
    this.box.classList.toggle('mirrored', !!on);
    this.box.dataset.mirror = String(!!on);
  }

  /** The playhead is at `at_s`; while `playing` it runs on from there at `speed` (slow audition: 0.5, 0.75). */
  show(at_s, playing, speed = 1) {
    const wasPlaying = this.want.playing;
    this.want = { at_s, playing, since: this.now(), speed };
    if (playing && !wasPlaying) this.playStart = this.now();
    if (!playing && wasPlaying && this.playStart !== null) {
      this.stats.playing_ms += this.now() - this.playStart;
      this.playStart = null;
    }
    this.request();
  }

  /** Where the playhead is now: while playing, moved on by the time since the last event. */
  playhead() {
    const w = this.want;
    return w.playing ? w.at_s + ((this.now() - w.since) / 1000) * (w.speed || 1) : w.at_s;
  }

  request() {
    if (!this.fileId || this.loading || this.box.hidden) return;
    const playing = this.want.playing;
    const at_s = this.playhead();
    const width = pictureWidth(this.box.clientWidth || 320, window.devicePixelRatio || 1);
    const url = frameUrl(this.base, this.fileId, at_s, width, playing);
    // While playing, ask for a frame only once the playhead is in a new one.
    const key = playing ? `${Math.floor(at_s * this.fps)}/${width}` : url;
    if (key === this.shownKey) {
      if (playing) requestAnimationFrame(() => this.request());
      return;
    }
    this.loading = { url, key, at_s, playing, t0: this.now() };
    this.img.src = url;
  }

  loaded(ok) {
    const done = this.loading;
    this.loading = null;
    if (!done) return;
    if (ok) {
      this.shownKey = done.key;
      this.box.dataset.shownS = done.at_s.toFixed(3);
      if (done.playing) {
        this.stats.frames_playing += 1;
        this.stats.lag_s.push(this.playhead() - done.at_s);
      } else {
        this.stats.still_ms.push(this.now() - done.t0);
      }
    } else {
      this.stats.errors += 1;
      // Nothing to show for this one (e.g. a newer request replaced it); do not retry it.
      this.shownKey = done.key;
    }
    this.box.dataset.loaded = String((Number(this.box.dataset.loaded) || 0) + 1);
    if (this.want.playing) requestAnimationFrame(() => this.request());
    else this.request();
  }
}
