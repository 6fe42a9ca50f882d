// Listening: play/stop the recording with the aligned song from any point, the balance
// between them, and what happens when there is no sound output.
import { invoke } from './ipc.js';
import { t } from './i18n.js';

export const NO_AUDIO_DEVICE = 'no_audio_device';

export class Preview {
  /**
   * `onChange(state)` runs on every state change; `onError(err)` for errors other than a
   * missing output device (which is shown in `statusEl` and never blocks anything else).
   */
  constructor({ statusEl, onChange, onError }) {
    Object.assign(this, { statusEl, onChange, onError });
    this.playing = false;
    this.position_s = 0;
    this.balance = 0;
    this.speed = 1; // 1, 0.75 or 0.5: slow audition, pitch kept (Rust stretches the mix)
    this.jobId = null;
    this.noDevice = false;
    this.noDeviceDetail = '';
  }

  /** Re-renders the message in the current language. */
  translate() {
    this.setNoDevice(this.noDevice, this.noDeviceDetail);
  }

  async play(jobId, fromS) {
    this.jobId = jobId;
    this.position_s = fromS;
    try {
      await invoke('preview_play', { id: jobId, from_s: fromS, balance: this.balance, speed: this.speed });
      this.setNoDevice(false);
      // The event will confirm; show "playing" at once so the button does not lag.
      this.playing = true;
    } catch (e) {
      this.playing = false;
      if (e && e.code === NO_AUDIO_DEVICE) this.setNoDevice(true, e.message);
      else this.onError(e);
    }
    this.onChange(this);
  }

  async stop() {
    this.playing = false;
    this.onChange(this);
    try {
      await invoke('preview_stop', {});
    } catch (e) {
      this.onError(e);
    }
  }

  toggle(jobId, fromS) {
    return this.playing ? this.stop() : this.play(jobId, fromS);
  }

  /** Balance changed: takes effect at once by restarting from where it is. */
  async setBalance(balance, jobId) {
    this.balance = balance;
    if (this.playing && jobId) await this.play(jobId, this.position_s);
  }

  /** Speed changed (slow audition): takes effect at once by restarting from where it is. */
  async setSpeed(speed, jobId) {
    this.speed = speed;
    if (this.playing && jobId) await this.play(jobId, this.position_s);
    else this.onChange(this);
  }

  /** Moves the playhead; playback continues from the new point. */
  async seek(jobId, s) {
    this.position_s = s;
    if (this.playing) await this.play(jobId, s);
    else this.onChange(this);
  }

  /** `preview-state` event from Rust. */
  handleEvent({ playing, position_s, error }) {
    this.playing = playing;
    if (Number.isFinite(position_s)) this.position_s = position_s;
    if (error && error.code === NO_AUDIO_DEVICE) this.setNoDevice(true, error.message);
    else if (error) this.onError(error);
    else if (playing) this.setNoDevice(false);
    this.onChange(this);
  }

  setNoDevice(on, detail = '') {
    this.noDevice = on;
    this.noDeviceDetail = detail;
    this.statusEl.hidden = !on;
    this.statusEl.textContent = on ? `${t('preview.no_device')} ${t('preview.no_device_fix')}${detail ? ` (${detail})` : ''}` : '';
  }
}
