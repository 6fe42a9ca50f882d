// Resolves tauri.conf.json, the capability files and our command permissions
// at build time. Our own commands are declared here so they pass through the
// ACL: the capability grants exactly these.
fn main() {
    println!("cargo:rerun-if-changed=src-tauri/capabilities");
    let app = tauri_build::AppManifest::new().commands(&["probe_media"]);
    let attrs = tauri_build::Attributes::new()
        .capabilities_path_pattern("./src-tauri/capabilities/**/*")
        .app_manifest(app);
    if let Err(e) = tauri_build::try_build(attrs) {
        panic!("tauri-build failed: {e:#}");
    }
}
