//! How the app asks WebKitGTK (the Linux webview) to draw the window.
//!
//! Accelerated compositing is turned off (`WEBKIT_DISABLE_COMPOSITING_MODE=1`)
//! unless the user set that variable themselves. Why: the window is plain
//! HTML, canvas and one `<img>` (no WebGL, no `<video>`, no 3-D transforms),
//! which WebKit paints in software in a few ms; with compositing on, every
//! change of the window goes through GL, and where GL is software (Xvfb,
//! virtual machines, remote desktops, many drivers WebKitGTK blocks) one
//! repaint of the changed window measured ~190 ms against ~11 ms with it
//! off, so the picture view showed 5.3 frames/s while playing against 27.9
//! (BENCHMARKS.md, picture preview). A user who wants compositing back sets
//! `WEBKIT_DISABLE_COMPOSITING_MODE=0` (WebKitGTK reads "0" as "keep it").
//! (Without compositing, WebDriver's screenshot waits for the page's next
//! paint: the E2E tests' helper keeps one coming, see tests/e2e/driver.mjs.)

use std::ffi::OsStr;

/// The variable WebKitGTK reads once, when its first web view is made.
pub const COMPOSITING_VAR: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";

/// The value to set, given the variable as the process found it: `Some("1")`
/// when the user left it unset, `None` (keep theirs) otherwise.
pub fn compositing_setting(user_value: Option<&OsStr>) -> Option<&'static str> {
    match user_value {
        None => Some("1"),
        Some(_) => None,
    }
}

/// Sets the webview's drawing variables for this process. Call first thing
/// in `run()`, before any thread is started (the environment is shared).
pub fn configure() {
    if !cfg!(target_os = "linux") {
        return;
    }
    if let Some(v) = compositing_setting(std::env::var_os(COMPOSITING_VAR).as_deref()) {
        std::env::set_var(COMPOSITING_VAR, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compositing_is_turned_off_only_when_the_user_did_not_choose() {
        assert_eq!(compositing_setting(None), Some("1"));
        assert_eq!(compositing_setting(Some(OsStr::new("0"))), None);
        assert_eq!(compositing_setting(Some(OsStr::new("1"))), None);
        assert_eq!(compositing_setting(Some(OsStr::new(""))), None);
    }
}
