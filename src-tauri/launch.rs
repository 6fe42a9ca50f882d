//! Files the app is launched with: "Open with BeatSync" in a file manager,
//! `beatsync-app class.mp4 song.m4a` in a terminal, or a second launch while
//! the app runs (its arguments reach this process through the single-instance
//! plugin's interface on the session bus: `handover`). They are made absolute against the launching process's working
//! directory and handed to the window on the same path as a drop — but only
//! once the page listens (it says so with the `page-ready` event), so none
//! is lost while the window is still loading.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use tauri::{AppHandle, Listener, Manager, Runtime};

/// The event the page emits once it listens to `files-added`.
pub const PAGE_READY: &str = "page-ready";

/// The files named on a command line (`args` includes the program name).
/// Arguments starting with `-` are options for someone else (GTK, a WebDriver
/// launcher) and are skipped, except that everything after a lone `--` is a
/// file. `file://` URLs become paths; relative paths are resolved against
/// `cwd`, the launching process's working directory, and `.`/`..` are taken
/// out (as a shell would), so a file has one name however it was reached.
/// Whether each file exists and is media is for the probe to say, in the window.
pub fn files_from_args<I, S>(args: I, cwd: &Path) -> Vec<PathBuf>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let mut files = Vec::new();
    let mut options_ended = false;
    for arg in args.into_iter().skip(1).map(Into::into) {
        if !options_ended && arg == "--" {
            options_ended = true;
            continue;
        }
        if arg.is_empty() || (!options_ended && arg.to_string_lossy().starts_with('-')) {
            continue;
        }
        let path = file_url_path(&arg).unwrap_or_else(|| PathBuf::from(&arg));
        files.push(without_dots(&cwd.join(path)));
    }
    files
}

/// `path` with `.` and `..` components resolved by name (symbolic links are
/// left as they are, as a file manager's drop would give them).
fn without_dots(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // The root's parent is the root.
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(part),
            },
            other => out.push(other),
        }
    }
    out
}

/// The path of a `file://` URL (as some file managers pass them), else None.
fn file_url_path(arg: &OsString) -> Option<PathBuf> {
    let text = arg.to_str()?;
    if !text.starts_with("file://") {
        return None;
    }
    tauri::Url::parse(text).ok()?.to_file_path().ok()
}

/// The files of this process's own command line.
pub fn command_line_files() -> Vec<PathBuf> {
    let cwd = std::env::current_dir().unwrap_or_default();
    files_from_args(std::env::args_os(), &cwd)
}

/// Launch files waiting for the page, and whether it listens yet.
#[derive(Debug, Default)]
pub struct LaunchQueue(Mutex<QueueState>);

#[derive(Debug, Default)]
struct QueueState {
    page_ready: bool,
    waiting: Vec<PathBuf>,
}

impl LaunchQueue {
    /// A queue holding the files the app was started with.
    pub fn holding(files: Vec<PathBuf>) -> Self {
        Self(Mutex::new(QueueState {
            page_ready: false,
            waiting: files,
        }))
    }

    /// Files to hand over now: all of `files` once the page listens; none
    /// before (they wait for [`LaunchQueue::page_ready`]).
    pub fn offer(&self, files: Vec<PathBuf>) -> Vec<PathBuf> {
        let mut q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if q.page_ready {
            files
        } else {
            q.waiting.extend(files);
            Vec::new()
        }
    }

    /// The page listens (again, after a reload): returns the files that waited.
    pub fn page_ready(&self) -> Vec<PathBuf> {
        let mut q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        q.page_ready = true;
        std::mem::take(&mut q.waiting)
    }
}

/// Keeps a queue (unless `run` already put one holding the command line's
/// files) and hands its files over when the page says it listens.
pub fn install<R: Runtime>(app: &AppHandle<R>) {
    if app.try_state::<LaunchQueue>().is_none() {
        app.manage(LaunchQueue::default());
    }
    let handle = app.clone();
    app.listen_any(PAGE_READY, move |_| {
        let files = handle.state::<LaunchQueue>().page_ready();
        hand_over(&handle, files);
    });
}

/// The page listens (it calls this once its listeners are set): the files
/// that waited go to it. A command rather than an event from the page: the
/// window may call our commands, not emit events.
#[tauri::command(rename_all = "snake_case")]
pub fn page_ready<R: Runtime>(app: AppHandle<R>) {
    if let Some(queue) = app.try_state::<LaunchQueue>() {
        let files = queue.page_ready();
        hand_over(&app, files);
    }
}

/// Files from a second launch (or any later source): to the window now if
/// the page listens, else when it does.
pub fn offer<R: Runtime>(app: &AppHandle<R>, files: Vec<PathBuf>) {
    let now = match app.try_state::<LaunchQueue>() {
        Some(queue) => queue.offer(files),
        None => files,
    };
    hand_over(app, now);
}

fn hand_over<R: Runtime>(app: &AppHandle<R>, files: Vec<PathBuf>) {
    if !files.is_empty() {
        crate::hand_over_files(app.clone(), files);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[cfg(unix)]
    #[test]
    fn relative_paths_resolve_against_the_launching_directory() {
        let files = files_from_args(
            args(&[
                "beatsync-app",
                "a.mp4",
                "../music/song.m4a",
                "/abs/周六 class.mp4",
            ]),
            Path::new("/home/me/Videos"),
        );
        assert_eq!(
            files,
            [
                PathBuf::from("/home/me/Videos/a.mp4"),
                PathBuf::from("/home/me/music/song.m4a"),
                PathBuf::from("/abs/周六 class.mp4"),
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn options_are_skipped_until_a_double_dash() {
        let files = files_from_args(
            args(&["app", "--automation", "-x", "", "--", "-dash.mp4", "--"]),
            Path::new("/w"),
        );
        assert_eq!(
            files,
            [PathBuf::from("/w/-dash.mp4"), PathBuf::from("/w/--")]
        );
        assert!(files_from_args(args(&["app"]), Path::new("/w")).is_empty());
        // `..` above the root stays at the root.
        assert_eq!(
            files_from_args(args(&["app", "../../x.mp4"]), Path::new("/w")),
            [PathBuf::from("/x.mp4")]
        );
    }

    #[cfg(unix)]
    #[test]
    fn file_urls_become_paths() {
        let files = files_from_args(
            args(&["app", "file:///home/me/%E5%91%A8%E5%85%AD%20class.mp4"]),
            Path::new("/w"),
        );
        assert_eq!(files, [PathBuf::from("/home/me/周六 class.mp4")]);
    }

    #[test]
    fn files_wait_until_the_page_listens() {
        let q = LaunchQueue::holding(vec![PathBuf::from("/a.mp4")]);
        assert!(q.offer(vec![PathBuf::from("/b.m4a")]).is_empty());
        assert_eq!(
            q.page_ready(),
            [PathBuf::from("/a.mp4"), PathBuf::from("/b.m4a")]
        );
        // Listening now: later files go straight through; a reload finds none waiting.
        assert_eq!(
            q.offer(vec![PathBuf::from("/c.mp4")]),
            [PathBuf::from("/c.mp4")]
        );
        assert!(q.page_ready().is_empty());
    }
}
