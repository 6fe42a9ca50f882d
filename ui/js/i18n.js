// English and Simplified Chinese. Follows the system locale; the user can switch.
export const STRINGS = {
  en: {
    'lang.switch': '中文',
    'lang.hint': 'Switch the interface to Chinese',
    'drop.title': 'Drop the class videos and the song here',
    'drop.hint': 'Any phone video (MP4, MOV, MKV, AVI) and the song as an audio file or a video.',
    'path.label': 'Or add a file by path:',
    'path.placeholder': '/home/me/Videos/class.mp4',
    'path.add': 'Add',
    'files.title': 'Files',
    'files.empty': 'No files yet.',
    'file.checking': 'Checking…',
    'role.class': 'Class video',
    'role.song': 'Song',
    'role.unknown': 'Not usable',
    'info.duration': '{d}',
    'info.video': '{codec} {w}×{h}, {fps} fps',
    'info.rotated': 'rotated {deg}°',
    'info.audio': '{codec} {rate} kHz, {ch}',
    'info.noaudio': 'no sound',
    'ch.1': 'mono',
    'ch.2': 'stereo',
    'ch.n': '{n} channels',
    'err.not_found': 'This file does not exist any more. Was it moved or renamed?',
    'err.unreadable': 'This file cannot be read.',
    'err.not_media': 'This is not a video or audio file.',
    'err.no_audio': 'This file has no sound.',
    'err.no_video': 'This file has no picture.',
    'err.empty': 'This file is empty.',
    'err.unsupported': 'This kind of file is not supported.',
    'err.internal': 'Something went wrong inside BeatSync.',
    'err.generic': 'This file cannot be used.',
  },
  zh: {
    'lang.switch': 'English',
    'lang.hint': '将界面切换为英文',
    'drop.title': '把课堂视频和歌曲拖到这里',
    'drop.hint': '任意手机视频（MP4、MOV、MKV、AVI），歌曲可以是音频文件或视频。',
    'path.label': '或按路径添加文件：',
    'path.placeholder': '/home/我/视频/课堂.mp4',
    'path.add': '添加',
    'files.title': '文件',
    'files.empty': '还没有文件。',
    'file.checking': '正在检查…',
    'role.class': '课堂视频',
    'role.song': '歌曲',
    'role.unknown': '无法使用',
    'info.duration': '{d}',
    'info.video': '{codec} {w}×{h}，{fps} 帧/秒',
    'info.rotated': '旋转 {deg}°',
    'info.audio': '{codec} {rate} kHz，{ch}',
    'info.noaudio': '没有声音',
    'ch.1': '单声道',
    'ch.2': '立体声',
    'ch.n': '{n} 声道',
    'err.not_found': '文件不存在了。是否被移动或改名？',
    'err.unreadable': '无法读取这个文件。',
    'err.not_media': '这不是视频或音频文件。',
    'err.no_audio': '这个文件没有声音。',
    'err.no_video': '这个文件没有画面。',
    'err.empty': '这个文件是空的。',
    'err.unsupported': '不支持这种文件。',
    'err.internal': 'BeatSync 内部出错。',
    'err.generic': '无法使用这个文件。',
  },
};

let current = 'en';

/** Picks 'zh' for any Chinese system locale, else English. */
export function detectLanguage(languages = (typeof navigator !== 'undefined' && navigator.languages) || []) {
  for (const l of languages) {
    const base = String(l).toLowerCase().split('-')[0];
    if (base === 'zh') return 'zh';
    if (base === 'en') return 'en';
  }
  return 'en';
}

export function setLanguage(lang) {
  current = STRINGS[lang] ? lang : 'en';
  return current;
}

export function language() {
  return current;
}

/** Looks up a string and fills `{name}` placeholders. */
export function t(key, vars = {}) {
  const s = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : `{${k}}`));
}

/** Applies translations to every element marked with data-i18n attributes. */
export function translatePage(root = document) {
  document.documentElement.lang = current === 'zh' ? 'zh-CN' : 'en';
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
}
