//! The repository's metadata decoders (`shale_repository.json`, `meta.json`, `__info_*.json`)
//! return a typed error, never panic, on any bytes; and a `meta.json` that passes validation
//! names only files inside the repository's `data/` folder and only names the engine accepts.
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use shale_backup::format::{
    self, RepositoryFile, SnapshotInfo, SnapshotMeta, decode_json, info_timestamp,
};

fuzz_target!(|data: &[u8]| {
    let path = Path::new("repo/snapshots/s/meta.json");
    let _ = decode_json::<RepositoryFile>(Path::new("repo/shale_repository.json"), data);
    if let Ok(info) = SnapshotInfo::decode(Path::new("repo/snapshots/s/__info_x.json"), data) {
        // A decoded info file re-encodes to bytes that decode to the same value.
        let bytes = info.encode().expect("a decoded info file encodes");
        let again = SnapshotInfo::decode(Path::new("again"), &bytes).expect("re-decodes");
        assert_eq!(again, info);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(ts) = info_timestamp(text) {
            assert!(
                ts.bytes().all(|b| b.is_ascii_digit() || b == b'-'),
                "{ts:?}"
            );
        }
    }
    let Ok(meta) = decode_json::<SnapshotMeta>(path, data) else {
        return;
    };
    if meta.validate(path).is_err() {
        return;
    }
    for name in std::iter::once(&meta.database)
        .chain(meta.tables.iter().map(|t| &t.name))
        .chain(
            meta.tables
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| &p.name)),
        )
    {
        assert!(
            shale_engine::names::validate("name", name).is_ok(),
            "validated meta holds a bad name {name:?}"
        );
    }
    for file in meta.files() {
        let p = Path::new(&file.path);
        let mut components = p.components();
        assert_eq!(
            components.next(),
            Some(Component::Normal(format::DATA_DIR.as_ref())),
            "validated meta names a file outside data/: {:?}",
            file.path
        );
        assert!(
            components.all(|c| matches!(c, Component::Normal(_))),
            "validated meta names an escaping path {:?}",
            file.path
        );
        assert!(
            !file.path.contains('\\') && !file.path.contains('\0'),
            "{:?}",
            file.path
        );
        let joined = Path::new("/repo").join(p);
        assert!(joined.starts_with("/repo/data/"), "{joined:?}");
    }
});
