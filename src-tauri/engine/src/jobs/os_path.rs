//! Paths kept exactly as the OS spells them. A file name need not be UTF-8
//! (Unix: any bytes but `/` and NUL; Windows: UTF-16 with unpaired
//! surrogates), and a path kept as lossy text (U+FFFD) leads to another
//! file, or none. The store keeps these bytes beside the text, and job
//! options keep a folder that is not UTF-8 in this form.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::path::{Path, PathBuf};

/// A path's exact spelling: on Unix its bytes; on Windows its UTF-16 code
/// units, little-endian (unpaired surrogates kept).
pub fn path_bytes(p: &Path) -> Vec<u8> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        p.as_os_str().as_bytes().to_vec()
    }
    #[cfg(windows)]
    {
        use std::os::windows::ffi::OsStrExt;
        p.as_os_str()
            .encode_wide()
            .flat_map(u16::to_le_bytes)
            .collect()
    }
    #[cfg(not(any(unix, windows)))]
    {
        p.to_string_lossy().into_owned().into_bytes()
    }
}

/// The inverse of [`path_bytes`]; `None` for bytes it cannot have written.
pub fn path_from_bytes(b: &[u8]) -> Option<PathBuf> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Some(PathBuf::from(std::ffi::OsStr::from_bytes(b)))
    }
    #[cfg(windows)]
    {
        use std::os::windows::ffi::OsStringExt;
        if b.len() % 2 != 0 {
            return None;
        }
        let wide: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        Some(PathBuf::from(std::ffi::OsString::from_wide(&wide)))
    }
    #[cfg(not(any(unix, windows)))]
    {
        String::from_utf8(b.to_vec()).ok().map(PathBuf::from)
    }
}

/// A path in JSON: a string when it is UTF-8 (as serde writes any path, so
/// what older versions wrote reads the same), else `{"os": [bytes]}` in
/// the form of [`path_bytes`].
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum JsonPath {
    Text(String),
    Os { os: Vec<u8> },
}

impl JsonPath {
    fn of(p: &Path) -> Self {
        match p.to_str() {
            Some(text) => JsonPath::Text(text.to_owned()),
            None => JsonPath::Os { os: path_bytes(p) },
        }
    }

    fn path<E: serde::de::Error>(self) -> Result<PathBuf, E> {
        match self {
            JsonPath::Text(text) => Ok(PathBuf::from(text)),
            JsonPath::Os { os } => path_from_bytes(&os)
                .ok_or_else(|| E::custom("a path's bytes are not a path on this system")),
        }
    }
}

/// A path as a JSON value, in the form of [`json`].
pub fn json_value(p: &Path) -> serde_json::Value {
    match p.to_str() {
        Some(text) => serde_json::Value::from(text),
        None => serde_json::json!({ "os": path_bytes(p) }),
    }
}

/// The path a [`json_value`] holds; `None` when it holds none.
pub fn from_json_value(v: serde_json::Value) -> Option<PathBuf> {
    JsonPath::deserialize(v)
        .ok()?
        .path::<serde_json::Error>()
        .ok()
}

/// `#[serde(with = "json")]` for a `PathBuf` that may not be UTF-8.
pub mod json {
    use super::*;

    pub fn serialize<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
        JsonPath::of(p).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
        JsonPath::deserialize(d)?.path()
    }
}

/// `#[serde(with = "opt_json")]` for an `Option<PathBuf>` that may not be UTF-8.
pub mod opt_json {
    use super::*;

    pub fn serialize<S: Serializer>(p: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
        p.as_deref().map(JsonPath::of).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
        Option::<JsonPath>::deserialize(d)?
            .map(JsonPath::path)
            .transpose()
    }
}

/// `#[serde(with = "vec_json")]` for a list of paths that may not be UTF-8.
pub mod vec_json {
    use super::*;

    pub fn serialize<S: Serializer>(p: &[PathBuf], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(p.iter().map(|p| JsonPath::of(p)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PathBuf>, D::Error> {
        Vec::<JsonPath>::deserialize(d)?
            .into_iter()
            .map(JsonPath::path)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Holder {
        #[serde(with = "opt_json", default)]
        dir: Option<PathBuf>,
    }

    fn round_trip(dir: Option<PathBuf>) -> (String, Holder) {
        let json = serde_json::to_string(&Holder { dir }).expect("serialises");
        let back = serde_json::from_str(&json).expect("reads back");
        (json, back)
    }

    #[test]
    fn utf8_paths_stay_plain_strings() {
        let dir = PathBuf::from("/videos/舞 class");
        let (json, back) = round_trip(Some(dir.clone()));
        assert_eq!(json, r#"{"dir":"/videos/舞 class"}"#);
        assert_eq!(back.dir, Some(dir));
        assert_eq!(round_trip(None).1.dir, None);
        let old: Holder = serde_json::from_str(r#"{"dir":null}"#).expect("null");
        assert_eq!(old.dir, None);
    }

    #[cfg(unix)]
    #[test]
    fn a_path_that_is_not_utf8_comes_back_byte_identical() {
        use std::os::unix::ffi::OsStrExt;
        let dir = PathBuf::from(std::ffi::OsStr::from_bytes(b"/out/\xff\xfe-dir"));
        assert_eq!(path_from_bytes(&path_bytes(&dir)), Some(dir.clone()));
        let (json, back) = round_trip(Some(dir.clone()));
        assert!(
            json.contains(r#""os":[47,111,117,116,47,255,254"#),
            "{json}"
        );
        assert_eq!(
            back.dir.expect("a path").as_os_str().as_bytes(),
            dir.as_os_str().as_bytes()
        );
    }
}
