//! A second launch while the app runs ("Open with BeatSync" on more files, or
//! `beatsync-app file` in a terminal) hands its command line to the running
//! window over the session bus and ends, before this process starts GTK or
//! the web engine.
//!
//! The running window serves the single-instance plugin's D-Bus interface
//! (its callback adds the files: `launch::offer`); this is the client side
//! of that interface, called first thing. The plugin alone finds the other
//! instance only in its setup, once the toolkit and the web engine are up,
//! and ends the process from there with their threads running: one CI run
//! saw such a second launch end on SIGSEGV (not reproduced in 120 local
//! launches). Here nothing of the toolkit has started, and the launch takes
//! a bus round trip. Where the bus or the running instance does not answer,
//! the launch goes on as before and the plugin decides.

/// Hands this process's command line and working directory to the instance
/// of the app `identifier` that runs, if one does and takes them. Returns
/// whether it did (then this process has nothing more to do).
#[cfg(target_os = "linux")]
pub fn to_running_instance(identifier: &str) -> bool {
    use zbus::blocking::{fdo::DBusProxy, Connection};
    use zbus::names::BusName;
    let (name, path) = bus_name_and_path(identifier);
    let Ok(connection) = Connection::session() else {
        return false;
    };
    let Ok(bus_name) = BusName::try_from(name.as_str()) else {
        return false;
    };
    let running =
        DBusProxy::new(&connection).is_ok_and(|bus| bus.name_has_owner(bus_name).unwrap_or(false));
    if !running {
        return false;
    }
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let cwd = std::env::current_dir()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let handed = connection
        .call_method(
            Some(name.as_str()),
            path.as_str(),
            Some(INTERFACE),
            METHOD,
            &(args, cwd),
        )
        .is_ok();
    tracing::info!(
        handed,
        "second launch: command line handed to the running window"
    );
    handed
}

/// Elsewhere the plugin's own mechanism (a named mutex, a message window)
/// comes before the toolkit already.
#[cfg(not(target_os = "linux"))]
pub fn to_running_instance(_identifier: &str) -> bool {
    false
}

/// The single-instance plugin's interface and method on the bus (its
/// `platform_impl/linux.rs`, version 2.5).
#[cfg(target_os = "linux")]
const INTERFACE: &str = "org.SingleInstance.DBus";
#[cfg(target_os = "linux")]
const METHOD: &str = "ExecuteCallback";

/// The bus name and object path the plugin serves for the app `identifier`
/// (without its `semver` feature, which this app does not turn on).
#[cfg(target_os = "linux")]
fn bus_name_and_path(identifier: &str) -> (String, String) {
    let name = format!("{identifier}.SingleInstance");
    let path = format!("/{}", name.replace('.', "/").replace('-', "_"));
    (name, path)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_name_and_path_are_the_plugins() {
        let (name, path) = bus_name_and_path("app.beatsync.desktop");
        assert_eq!(name, "app.beatsync.desktop.SingleInstance");
        assert_eq!(path, "/app/beatsync/desktop/SingleInstance");
        let (_, path) = bus_name_and_path("my-app.x");
        assert_eq!(path, "/my_app/x/SingleInstance");
    }
}
