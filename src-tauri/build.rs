// Resolves tauri.conf.json, the capability files and our command permissions
// at build time. Our own commands are declared here so they pass through the
// ACL: the capability grants exactly these.
fn main() {
    println!("cargo:rerun-if-changed=src-tauri/capabilities");
    let app = tauri_build::AppManifest::new().commands(&[
        "probe_media",
        "add_files",
        "pick_files",
        "pick_folder",
        "get_settings",
        "set_settings",
        "waveform",
        "analyze",
        "match_songs",
        "confirm_song",
        "page_ready",
        "set_placement",
        "set_trim",
        "set_plays",
        "set_plays_layout",
        "export",
        "export_all",
        "cancel_job",
        "retry_job",
        "list_jobs",
        "clear_history",
        "open_path",
        "reveal_path",
        "preview_play",
        "preview_stop",
        "try_sample",
        "about",
        "frame_step",
        "filmstrip",
        "close_pictures",
    ]);
    let attrs = tauri_build::Attributes::new()
        .capabilities_path_pattern("./src-tauri/capabilities/**/*")
        .app_manifest(app);
    if let Err(e) = tauri_build::try_build(attrs) {
        panic!("tauri-build failed: {e:#}");
    }
}
