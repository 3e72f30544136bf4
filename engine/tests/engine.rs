//! The engine's behaviour as a user relies on it: DDL, loads, partitions, snapshots, scans,
//! compaction, persistence.

mod common;

use common::*;
use shale_engine::*;
use std::sync::Arc;

/// An engine in a new directory, with an empty database `db`.
fn empty_db() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    engine.create_database("db").unwrap();
    (dir, engine)
}

fn setup() -> (tempfile::TempDir, Engine) {
    let (dir, engine) = empty_db();
    engine
        .create_table("db", sales_definition("sales"))
        .unwrap();
    (dir, engine)
}

#[test]
fn loads_route_rows_to_partitions_and_buckets() {
    let (_dir, engine) = setup();
    let report = engine
        .load("db", "sales", [sales_batch(&engine, "db", "sales", 0..300)])
        .unwrap();
    assert_eq!(report.row_count, 300);
    let snap = engine.snapshot();
    let t = snap.get_table("db", "sales").unwrap();
    let counts: Vec<u64> = t.partitions.iter().map(|p| p.row_count()).collect();
    assert_eq!(counts, vec![100, 100, 100]);
    for p in &t.partitions {
        assert_eq!(p.version, 2, "one load bumps the visible version");
        assert_eq!(p.tablets.len(), 4);
        assert!(
            p.tablets.iter().all(|tb| tb.rowsets.len() == 1),
            "rows spread over every bucket"
        );
    }
    assert_eq!(
        scan_all(&engine, &snap, "db", "sales"),
        (0..300).collect::<Vec<_>>()
    );
}

#[test]
fn a_row_that_fits_no_partition_refuses_the_whole_load_and_leaves_no_file() {
    let (dir, engine) = setup();
    engine
        .load("db", "sales", [sales_batch(&engine, "db", "sales", 0..10)])
        .unwrap();
    let before = segment_files(dir.path());
    let good = sales_batch(&engine, "db", "sales", 100..120);
    let mut bad = sales_batch(&engine, "db", "sales", 0..3);
    // day = 45 is beyond the last partition [20, 30).
    let columns: Vec<_> = bad
        .columns()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i == 1 {
                std::sync::Arc::new(arrow::array::Int32Array::from(vec![1, 45, 2]))
                    as arrow::array::ArrayRef
            } else {
                c.clone()
            }
        })
        .collect();
    bad = arrow::array::RecordBatch::try_new(bad.schema(), columns).unwrap();
    let err = engine.load("db", "sales", [good, bad]).unwrap_err();
    assert!(
        matches!(&err, Error::NoPartitionForValue { value, column, .. } if value == "45" && column == "day"),
        "{err}"
    );
    assert_eq!(
        segment_files(dir.path()),
        before,
        "no file of the refused load remains"
    );
    assert_eq!(
        scan_all(&engine, &engine.snapshot(), "db", "sales").len(),
        10
    );
}

#[test]
fn snapshots_see_exactly_their_version_while_the_table_changes() {
    let (dir, engine) = setup();
    engine
        .load("db", "sales", [sales_batch(&engine, "db", "sales", 0..90)])
        .unwrap();
    let before = engine.snapshot();
    engine
        .load(
            "db",
            "sales",
            [sales_batch(&engine, "db", "sales", 90..180)],
        )
        .unwrap();
    let middle = engine.snapshot();
    engine.drop_partition("db", "sales", "p0").unwrap();
    engine.compact_with("db", "sales", 2).unwrap();
    engine
        .truncate_table("db", "sales", Some(&["p1".to_string()]))
        .unwrap();
    assert_eq!(
        scan_all(&engine, &before, "db", "sales"),
        (0..90).collect::<Vec<_>>()
    );
    assert_eq!(
        scan_all(&engine, &middle, "db", "sales"),
        (0..180).collect::<Vec<_>>()
    );
    let now = scan_all(&engine, &engine.snapshot(), "db", "sales");
    assert_eq!(now, (0..180).filter(|i| i % 30 >= 20).collect::<Vec<_>>());
    // Files of dropped/compacted data stay while snapshots use them, then go.
    let held = segment_files(dir.path()).len();
    drop(before);
    drop(middle);
    let after = segment_files(dir.path());
    assert!(after.len() < held);
    assert_eq!(after, referenced_files(&engine.snapshot()));
}

#[test]
fn snapshot_cost_does_not_depend_on_size() {
    // O(1): a snapshot is one Arc clone; holding 10,000 of them copies nothing.
    let (dir, engine) = setup();
    engine
        .load(
            "db",
            "sales",
            [sales_batch(&engine, "db", "sales", 0..1000)],
        )
        .unwrap();
    let files = segment_files(dir.path());
    let snaps: Vec<Snapshot> = (0..10_000).map(|_| engine.snapshot()).collect();
    assert_eq!(segment_files(dir.path()), files);
    assert!(snaps.iter().all(|s| s.seq == snaps[0].seq));
}

#[test]
fn state_survives_reopen_and_a_second_open_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(dir.path()).unwrap();
        engine.create_database("db").unwrap();
        engine
            .create_table("db", sales_definition("sales"))
            .unwrap();
        engine
            .load("db", "sales", [sales_batch(&engine, "db", "sales", 0..50)])
            .unwrap();
        engine.put_meta("user/alice", Some("{}".into())).unwrap();
        assert!(matches!(
            Engine::open(dir.path()),
            Err(Error::Locked { .. })
        ));
    }
    let engine = Engine::open(dir.path()).unwrap();
    let snap = engine.snapshot();
    assert_eq!(
        scan_all(&engine, &snap, "db", "sales"),
        (0..50).collect::<Vec<_>>()
    );
    assert_eq!(snap.meta.get("user/alice").map(String::as_str), Some("{}"));
    // Ids keep increasing across reopen.
    engine
        .create_table("db", sales_definition("other"))
        .unwrap();
    let snap = engine.snapshot();
    assert_ne!(
        snap.get_table("db", "other").unwrap().id,
        snap.get_table("db", "sales").unwrap().id
    );
}

#[test]
fn log_rotation_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let options = EngineOptions {
        log_rotate_bytes: 4096,
        ..EngineOptions::default()
    };
    {
        let engine = Engine::open_with(dir.path(), options.clone()).unwrap();
        engine.create_database("db").unwrap();
        engine
            .create_table("db", sales_definition("sales"))
            .unwrap();
        for i in 0..20 {
            engine
                .load(
                    "db",
                    "sales",
                    [sales_batch(&engine, "db", "sales", i * 10..i * 10 + 10)],
                )
                .unwrap();
        }
    }
    let logs = std::fs::read_dir(dir.path().join("manifest"))
        .unwrap()
        .count();
    assert_eq!(logs, 1, "old logs are removed after rotation");
    let engine = Engine::open_with(dir.path(), options).unwrap();
    assert_eq!(
        scan_all(&engine, &engine.snapshot(), "db", "sales"),
        (0..200).collect::<Vec<_>>()
    );
}

#[test]
fn predicates_prune_partitions_and_segments_and_filter_rows() {
    let (_dir, engine) = setup();
    for i in 0..3 {
        engine
            .load(
                "db",
                "sales",
                [sales_batch(&engine, "db", "sales", i * 100..i * 100 + 100)],
            )
            .unwrap();
    }
    let snap = engine.snapshot();
    let options = ScanOptions {
        predicates: vec![Predicate::Lt("day".into(), Value::Int(10))],
        ..ScanOptions::default()
    };
    let stream = engine.scan(&snap, "db", "sales", options.clone()).unwrap();
    assert_eq!(stream.segments_scanned, 12, "only p0's 4 tablets x 3 loads");
    assert_eq!(stream.segments_pruned, 24);
    drop(stream);
    let ids = scan_ids(&engine, &snap, "db", "sales", options);
    assert_eq!(ids, (0..300).filter(|i| i % 30 < 10).collect::<Vec<_>>());
    // min/max pruning on a non-partition column: ids 0..100 are only in the first load.
    let options = ScanOptions {
        predicates: vec![Predicate::Between(
            "id".into(),
            Value::Int(5),
            Value::Int(7),
        )],
        ..ScanOptions::default()
    };
    let stream = engine.scan(&snap, "db", "sales", options.clone()).unwrap();
    assert!(stream.segments_scanned <= 12, "{}", stream.segments_scanned);
    drop(stream);
    assert_eq!(
        scan_ids(&engine, &snap, "db", "sales", options),
        vec![5, 6, 7]
    );
    let options = ScanOptions {
        predicates: vec![
            Predicate::In("region".into(), vec![Value::Str("r1".into())]),
            Predicate::Ge("id".into(), Value::Int(290)),
        ],
        projection: Some(vec![0, 2]),
        ..ScanOptions::default()
    };
    assert_eq!(
        scan_ids(&engine, &snap, "db", "sales", options),
        vec![291, 296]
    );
}

/// Strings read as views or as dictionaries are the same values: exact filters on them keep the
/// same rows, and the batches carry `Utf8View` or `Dictionary(Int32, Utf8)` where the schema says
/// VARCHAR.
#[test]
fn string_views_and_dictionaries_give_the_same_rows() {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::DataType;

    let (_dir, engine) = setup();
    // Two loads: two dictionaries per bucket, which the keys of each batch must not mix.
    engine
        .load("db", "sales", [sales_batch(&engine, "db", "sales", 0..150)])
        .unwrap();
    engine
        .load(
            "db",
            "sales",
            [sales_batch(&engine, "db", "sales", 150..300)],
        )
        .unwrap();
    let snap = engine.snapshot();
    let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let regions = |string_views, dictionary_columns: Vec<usize>, expected: &DataType| {
        let options = ScanOptions {
            predicates: vec![
                Predicate::In("region".into(), vec![Value::Str("r1".into())]),
                Predicate::Ge("region".into(), Value::Str("r1".into())),
            ],
            projection: Some(vec![0, 2]),
            string_views,
            dictionary_columns,
            ..ScanOptions::default()
        };
        let stream = engine.scan(&snap, "db", "sales", options).unwrap();
        assert_eq!(stream.schema().field(1).data_type(), expected);
        let mut rows = Vec::new();
        for batch in stream {
            let batch = batch.unwrap();
            assert_eq!(batch.column(1).data_type(), expected);
            let ids = batch
                .column(0)
                .as_primitive::<arrow::datatypes::Int64Type>();
            let region = arrow::compute::cast(batch.column(1), &DataType::Utf8).unwrap();
            let region = region.as_string::<i32>();
            for i in 0..batch.num_rows() {
                assert!(region.is_valid(i));
                rows.push((ids.value(i), region.value(i).to_string()));
            }
        }
        rows.sort();
        rows
    };
    let plain = regions(false, Vec::new(), &DataType::Utf8);
    assert_eq!(plain.len(), 60, "ids with id % 5 == 1");
    assert!(plain.iter().all(|(id, r)| id % 5 == 1 && r == "r1"));
    assert_eq!(regions(true, Vec::new(), &DataType::Utf8View), plain);
    assert_eq!(regions(false, vec![2], &dictionary), plain);
    assert_eq!(regions(true, vec![2], &dictionary), plain);
    // Unfiltered, every row comes back with its own region.
    let options = ScanOptions {
        projection: Some(vec![0, 2]),
        dictionary_columns: vec![2],
        ..ScanOptions::default()
    };
    let mut rows = Vec::new();
    for batch in engine.scan(&snap, "db", "sales", options).unwrap() {
        let batch = batch.unwrap();
        let ids = batch
            .column(0)
            .as_primitive::<arrow::datatypes::Int64Type>();
        let region = batch
            .column(1)
            .as_dictionary::<arrow::datatypes::Int32Type>();
        let values = region.values().as_string::<i32>();
        for i in 0..batch.num_rows() {
            let key = region.keys().value(i) as usize;
            rows.push((ids.value(i), values.value(key).to_string()));
        }
    }
    rows.sort();
    assert_eq!(rows.len(), 300);
    assert!(
        rows.iter().all(|(id, r)| *r == format!("r{}", id % 5)),
        "{rows:?}"
    );
}

#[test]
fn partitions_are_checked_added_and_dropped() {
    let (_dir, engine) = setup();
    let err = engine
        .add_partition(
            "db",
            "sales",
            PartitionDefinition {
                name: "px".into(),
                values: PartitionValues::Range {
                    lower: Some("25".into()),
                    upper: Some("35".into()),
                },
            },
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::PartitionOverlap { ref existing, .. } if existing == "p2"),
        "{err}"
    );
    let err = engine
        .add_partition(
            "db",
            "sales",
            PartitionDefinition {
                name: "p1".into(),
                values: PartitionValues::LessThan(Some("50".into())),
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::PartitionExists { .. }), "{err}");
    engine
        .add_partition(
            "db",
            "sales",
            PartitionDefinition {
                name: "p3".into(),
                values: PartitionValues::LessThan(None),
            },
        )
        .unwrap();
    engine
        .load("db", "sales", [sales_batch(&engine, "db", "sales", 0..5)])
        .unwrap();
    let snap = engine.snapshot();
    let t = snap.get_table("db", "sales").unwrap();
    assert_eq!(
        t.partition("p3").unwrap().bound,
        PartitionBound::Range {
            lower: Some(30),
            upper: None
        }
    );
    assert!(matches!(
        engine.drop_partition("db", "sales", "nope"),
        Err(Error::PartitionNotFound { .. })
    ));
}

#[test]
fn list_partitions_route_by_value() {
    let (_dir, engine) = empty_db();
    let mut def = sales_definition("t");
    def.partitioning = Partitioning::List {
        column: "region".into(),
    };
    def.partitions = vec![
        PartitionDefinition {
            name: "a".into(),
            values: PartitionValues::In(vec!["r0".into(), "r1".into()]),
        },
        PartitionDefinition {
            name: "b".into(),
            values: PartitionValues::In(vec!["r2".into(), "r3".into(), "r4".into()]),
        },
    ];
    engine.create_table("db", def.clone()).unwrap();
    engine
        .load("db", "t", [sales_batch(&engine, "db", "t", 0..50)])
        .unwrap();
    let snap = engine.snapshot();
    let t = snap.get_table("db", "t").unwrap();
    assert_eq!(t.partition("a").unwrap().row_count(), 20);
    assert_eq!(t.partition("b").unwrap().row_count(), 30);
    def.name = "t2".into();
    def.partitions[1].values = PartitionValues::In(vec!["r1".into()]);
    assert!(matches!(
        engine.create_table("db", def),
        Err(Error::PartitionOverlap { .. })
    ));
}

#[test]
fn schema_mismatch_and_bad_definitions_are_typed_errors() {
    let (_dir, engine) = setup();
    let batch = arrow::array::RecordBatch::try_from_iter(vec![(
        "x",
        std::sync::Arc::new(arrow::array::Int32Array::from(vec![1])) as arrow::array::ArrayRef,
    )])
    .unwrap();
    assert!(matches!(
        engine.load("db", "sales", [batch]),
        Err(Error::SchemaMismatch { .. })
    ));
    assert!(matches!(
        engine.load("db", "nope", Vec::new()),
        Err(Error::TableNotFound { .. })
    ));
    assert!(matches!(
        engine.create_table("db", sales_definition("sales")),
        Err(Error::TableExists { .. })
    ));
    assert!(matches!(
        engine.create_table("db", sales_definition("../evil")),
        Err(Error::InvalidName { .. })
    ));
    let mut def = sales_definition("f");
    def.partitioning = Partitioning::Range {
        column: "amount".into(),
    };
    assert!(matches!(
        engine.create_table("db", def),
        Err(Error::InvalidDefinition(_))
    ));
}

#[test]
fn compaction_merges_rowsets_and_keeps_rows() {
    let (_dir, engine) = setup();
    for i in 0..5 {
        engine
            .load(
                "db",
                "sales",
                [sales_batch(&engine, "db", "sales", i * 60..i * 60 + 60)],
            )
            .unwrap();
    }
    let report = engine.compact_with("db", "sales", 2).unwrap();
    assert_eq!(report.tablets, 12);
    let snap = engine.snapshot();
    for p in &snap.get_table("db", "sales").unwrap().partitions {
        assert!(p.tablets.iter().all(|t| t.rowsets.len() == 1));
    }
    assert_eq!(
        scan_all(&engine, &snap, "db", "sales"),
        (0..300).collect::<Vec<_>>()
    );
}

#[test]
fn every_column_type_round_trips() {
    use arrow::array::*;
    let (_dir, engine) = empty_db();
    let types = [
        "BOOLEAN",
        "TINYINT",
        "SMALLINT",
        "INT",
        "BIGINT",
        "LARGEINT",
        "FLOAT",
        "DOUBLE",
        "DECIMAL(10,2)",
        "CHAR(4)",
        "VARCHAR(8)",
        "STRING",
        "DATE",
        "DATETIME",
    ];
    let columns: Vec<Column> = types
        .iter()
        .enumerate()
        .map(|(i, t)| Column::new(format!("c{i}"), t.parse().unwrap()))
        .collect();
    engine
        .create_table("db", TableDefinition::new("all", columns))
        .unwrap();
    let schema = engine
        .snapshot()
        .get_table("db", "all")
        .unwrap()
        .schema
        .arrow_schema()
        .clone();
    // Build each column from text through Arrow's cast, as the SQL layer does.
    let texts = [
        "true",
        "-8",
        "300",
        "70000",
        "9000000000",
        "12345678901234567890",
        "1.5",
        "2.25",
        "12.34",
        "abcd",
        "hello",
        "any length",
        "2025-06-30",
        "2025-06-30 12:00:01",
    ];
    let arrays: Vec<ArrayRef> = texts
        .iter()
        .zip(schema.fields())
        .map(|(t, f)| {
            arrow::compute::cast(&StringArray::from(vec![Some(*t), None]), f.data_type()).unwrap()
        })
        .collect();
    let batch = RecordBatch::try_new(schema, arrays).unwrap();
    engine.load("db", "all", [batch.clone()]).unwrap();
    let got = scan_batch(&engine, &engine.snapshot(), "db", "all");
    assert_eq!(got, batch);
}

#[test]
fn loads_sort_segments_by_key_and_key_ranges_skip_pages() {
    use arrow::array::{Array, AsArray, Int64Array, RecordBatch};
    use arrow::datatypes::Int64Type;
    use std::sync::Arc;
    let (_dir, engine) = empty_db();
    let def = TableDefinition::new(
        "k",
        vec![
            Column::new("id", ColumnType::BigInt).key().not_null(),
            Column::new("v", ColumnType::BigInt),
        ],
    );
    engine.create_table("db", def).unwrap();
    let schema = engine
        .snapshot()
        .get_table("db", "k")
        .unwrap()
        .schema
        .arrow_schema()
        .clone();
    // 100,000 ids in a scrambled order, in two batches.
    let rows: i64 = 100_000;
    let ids: Vec<i64> = (0..rows).map(|i| (i * 7_919) % rows).collect();
    let batches: Vec<RecordBatch> = ids
        .chunks(60_000)
        .map(|chunk| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(chunk.to_vec())),
                    Arc::new(Int64Array::from_iter_values(chunk.iter().map(|i| i * 2))),
                ],
            )
            .unwrap()
        })
        .collect();
    engine.load("db", "k", batches).unwrap();
    let snap = engine.snapshot();
    let table = snap.get_table("db", "k").unwrap();
    let segment = table.partitions[0].segments().next().unwrap().clone();
    let mut stored = Vec::new();
    for batch in segment.reader(None, 8192).unwrap() {
        let batch = batch.unwrap();
        stored.extend(
            batch
                .column(0)
                .as_primitive::<Int64Type>()
                .values()
                .iter()
                .copied(),
        );
        let values = batch.column(1).as_primitive::<Int64Type>();
        for (i, v) in batch
            .column(0)
            .as_primitive::<Int64Type>()
            .iter()
            .zip(values.iter())
        {
            assert_eq!(v, i.map(|i| i * 2), "rows stay whole when sorted");
        }
    }
    assert_eq!(
        stored,
        (0..rows).collect::<Vec<_>>(),
        "the segment is in key order"
    );

    // Without exact filtering, what comes back is the pages that may match: all the matching
    // rows, but far fewer than the table.
    let options = |exact| ScanOptions {
        predicates: vec![Predicate::Between(
            "id".into(),
            Value::Int(50_000),
            Value::Int(50_010),
        )],
        exact,
        ..ScanOptions::default()
    };
    let mut pruned = Vec::new();
    for batch in engine.scan(&snap, "db", "k", options(false)).unwrap() {
        let batch = batch.unwrap();
        pruned.extend(
            batch
                .column(0)
                .as_primitive::<Int64Type>()
                .values()
                .iter()
                .copied(),
        );
    }
    assert!((50_000..=50_010).all(|i| pruned.contains(&i)));
    assert!(
        pruned.len() <= 2 * 8192,
        "only the pages holding the range are read, not {} rows",
        pruned.len()
    );
    let mut exact = Vec::new();
    for batch in engine.scan(&snap, "db", "k", options(true)).unwrap() {
        let batch = batch.unwrap();
        assert!(batch.column(0).null_count() == 0);
        exact.extend(
            batch
                .column(0)
                .as_primitive::<Int64Type>()
                .values()
                .iter()
                .copied(),
        );
    }
    assert_eq!(exact, (50_000..=50_010).collect::<Vec<_>>());
}

/// The codecs of the column chunks of every segment of `db.table`, as Parquet names them: of
/// the DELTA_BINARY_PACKED chunks, and of the others.
fn segment_codecs(
    engine: &Engine,
    db: &str,
    table: &str,
) -> (
    std::collections::BTreeSet<String>,
    std::collections::BTreeSet<String>,
) {
    use parquet::basic::Encoding;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let snapshot = engine.snapshot();
    let t = snapshot.get_table(db, table).unwrap();
    let (mut delta, mut other) = (Default::default(), Default::default());
    for p in &t.partitions {
        for s in p.segments() {
            let file = std::fs::File::open(s.full_path()).unwrap();
            let reader = SerializedFileReader::new(file).unwrap();
            for rg in reader.metadata().row_groups() {
                for c in rg.columns() {
                    // The file names the codec, not the level it was written at.
                    let codec = format!("{:?}", c.compression());
                    let codec = codec.split('(').next().unwrap_or_default().to_string();
                    let set: &mut std::collections::BTreeSet<String> =
                        if c.encodings().any(|e| e == Encoding::DELTA_BINARY_PACKED) {
                            &mut delta
                        } else {
                            &mut other
                        };
                    set.insert(codec);
                }
            }
        }
    }
    (delta, other)
}

#[test]
fn the_compression_property_chooses_the_codec_of_new_segments_lz4_by_default() {
    let (_dir, engine) = empty_db();
    // Bit-packed deltas (the BIGINT key) are left uncompressed by the codecs without an entropy
    // coder, which find nothing in them.
    let cases = [
        (None, "LZ4_RAW", "UNCOMPRESSED"),
        (Some("lz4"), "LZ4_RAW", "UNCOMPRESSED"),
        (Some("LZ4_FRAME"), "LZ4_RAW", "UNCOMPRESSED"),
        (Some("zstd"), "ZSTD", "ZSTD"),
        (Some("ZSTD(9)"), "ZSTD", "ZSTD"),
        (Some("Snappy"), "SNAPPY", "UNCOMPRESSED"),
        (Some("none"), "UNCOMPRESSED", "UNCOMPRESSED"),
    ];
    for (i, (property, codec, delta_codec)) in cases.iter().enumerate() {
        let name = format!("t{i}");
        let mut def = sales_definition(&name);
        if let Some(p) = property {
            def.properties
                .insert(COMPRESSION_PROPERTY.into(), p.to_string());
        }
        engine.create_table("db", def).unwrap();
        engine
            .load("db", &name, [sales_batch(&engine, "db", &name, 0..300)])
            .unwrap();
        engine.compact_with("db", &name, 1).unwrap();
        engine
            .load("db", &name, [sales_batch(&engine, "db", &name, 300..400)])
            .unwrap();
        // Loaded and compacted segments alike; the rows read back whatever the codec.
        assert_eq!(
            segment_codecs(&engine, "db", &name),
            ([delta_codec.to_string()].into(), [codec.to_string()].into()),
            "{property:?}"
        );
        assert_eq!(
            scan_all(&engine, &engine.snapshot(), "db", &name),
            (0..400).collect::<Vec<_>>()
        );
    }
    // A codec shale cannot write is refused when the table is created, naming the value.
    for bad in ["zlib", "ZSTD(0)", "ZSTD(23)", "zstd(x)", ""] {
        let mut def = sales_definition("bad");
        def.properties
            .insert(COMPRESSION_PROPERTY.into(), bad.to_string());
        match engine.create_table("db", def) {
            Err(Error::InvalidDefinition(m)) => {
                assert!(m.starts_with("Unknown compression type"), "{m}");
                assert!(m.contains(&format!("{bad:?}")), "{m}");
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    assert!(engine.snapshot().get_table("db", "bad").is_err());
}

/// The `id` values of each row group of each segment of `db.table`, in file order.
fn row_group_ids(engine: &Engine, db: &str, table: &str) -> Vec<Vec<i64>> {
    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let snapshot = engine.snapshot();
    let t = snapshot.get_table(db, table).unwrap();
    let mut out = Vec::new();
    for p in &t.partitions {
        for s in p.segments() {
            let file = std::fs::File::open(s.full_path()).unwrap();
            let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
            for rg in 0..builder.metadata().num_row_groups() {
                let file = std::fs::File::open(s.full_path()).unwrap();
                let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                    .unwrap()
                    .with_row_groups(vec![rg])
                    .build()
                    .unwrap();
                let mut ids = Vec::new();
                for batch in reader {
                    let batch = batch.unwrap();
                    ids.extend(batch.column(0).as_primitive::<Int64Type>().values());
                }
                out.push(ids);
            }
        }
    }
    out
}

fn keyed_batch(engine: &Engine, ids: impl IntoIterator<Item = i64>) -> arrow::array::RecordBatch {
    use arrow::array::{Int64Array, RecordBatch};
    let schema = engine
        .snapshot()
        .get_table("db", "k")
        .unwrap()
        .schema
        .arrow_schema()
        .clone();
    let ids: Vec<i64> = ids.into_iter().collect();
    let v = Int64Array::from_iter_values(ids.iter().map(|i| i * 2));
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(ids)), Arc::new(v)]).unwrap()
}

/// An engine in a new directory with `db.k`: a BIGINT key `id` and a BIGINT `v`.
fn keyed_table() -> (tempfile::TempDir, Engine) {
    let (dir, engine) = empty_db();
    let def = TableDefinition::new(
        "k",
        vec![
            Column::new("id", ColumnType::BigInt).key().not_null(),
            Column::new("v", ColumnType::BigInt),
        ],
    );
    engine.create_table("db", def).unwrap();
    (dir, engine)
}

/// Loads into `db.k` ascending ids 0..200,000 in batches big enough to be split as they come,
/// then ids that go back below them (930,001..=1,000,000, scrambled); returns the ids loaded.
fn load_ordered_then_scrambled(engine: &Engine) -> Vec<i64> {
    let mut loaded: Vec<i64> = Vec::new();
    let mut batches = Vec::new();
    for start in (0..200_000).step_by(70_000) {
        let ids: Vec<i64> = (start..(start + 70_000).min(200_000)).collect();
        loaded.extend(&ids);
        batches.push(keyed_batch(engine, ids));
    }
    let back: Vec<i64> = (0..70_000)
        .map(|i| 1_000_000 - (i * 7_919) % 70_000)
        .collect();
    loaded.extend(&back);
    batches.push(keyed_batch(engine, back));
    engine.load("db", "k", batches).unwrap();
    loaded
}

#[test]
fn rows_in_key_order_stream_and_a_load_that_turns_unordered_keeps_every_row_group_sorted() {
    let (_dir, engine) = keyed_table();
    let mut loaded = load_ordered_then_scrambled(&engine);

    let groups = row_group_ids(&engine, "db", "k");
    for g in &groups {
        assert!(
            g.windows(2).all(|w| w[0] <= w[1]),
            "a row group out of key order"
        );
    }
    let mut stored: Vec<i64> = groups.concat();
    stored.sort_unstable();
    loaded.sort_unstable();
    assert_eq!(stored, loaded, "every row once");
    // The ordered rows went out as they came: the first row group holds the ascending ids
    // only, and the scrambled ones form a sorted run of their own.
    assert_eq!(groups[0], (0..200_000).collect::<Vec<_>>());
    assert_eq!(groups.len(), 2);
    let rows: Vec<i64> = scan_all(&engine, &engine.snapshot(), "db", "k");
    assert_eq!(rows.len(), 270_000);
}

#[test]
fn tiny_batches_are_gathered_before_the_segment_chooses_its_encodings() {
    use parquet::basic::Encoding;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let (_dir, engine) = keyed_table();
    // 3,000 batches of 10 rows: `v` takes 8 values, a dictionary's case, which the first
    // batch alone (10 distinct values) would not show.
    let schema = engine
        .snapshot()
        .get_table("db", "k")
        .unwrap()
        .schema
        .arrow_schema()
        .clone();
    let batches = (0..3_000i64).map(|b| {
        let ids: Vec<i64> = (b * 10..b * 10 + 10).collect();
        let v: Vec<i64> = if b == 0 {
            (0..10).collect()
        } else {
            ids.iter().map(|i| i % 8).collect()
        };
        arrow::array::RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(arrow::array::Int64Array::from(ids)),
                Arc::new(arrow::array::Int64Array::from(v)),
            ],
        )
        .unwrap()
    });
    engine.load("db", "k", batches).unwrap();
    let snapshot = engine.snapshot();
    let table = snapshot.get_table("db", "k").unwrap();
    let segments: Vec<_> = table.partitions[0].segments().cloned().collect();
    assert_eq!(segments.len(), 1);
    let reader =
        SerializedFileReader::new(std::fs::File::open(segments[0].full_path()).unwrap()).unwrap();
    assert_eq!(
        reader.metadata().num_row_groups(),
        1,
        "one row group, not one per batch"
    );
    let v = reader.metadata().row_group(0).column(1);
    assert!(
        v.encodings().any(|e| e == Encoding::RLE_DICTIONARY),
        "{:?}",
        v.encodings().collect::<Vec<_>>()
    );
    assert_eq!(
        scan_all(&engine, &snapshot, "db", "k"),
        (0..30_000).collect::<Vec<_>>()
    );
}

#[test]
fn scans_of_segments_with_several_row_groups_prune_each_and_never_mix_them_in_a_batch() {
    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;
    let (_dir, engine) = keyed_table();
    // Two row groups: 0..200,000 streamed in order, then 930,001..=1,000,000 scrambled.
    load_ordered_then_scrambled(&engine);
    assert_eq!(row_group_ids(&engine, "db", "k").len(), 2);
    let snapshot = engine.snapshot();
    for (low, high, expected) in [
        (
            199_990,
            930_005,
            (199_990..200_000)
                .chain(930_001..=930_005)
                .collect::<Vec<i64>>(),
        ),
        (10, 20, (10..=20).collect()),
        (999_990, 2_000_000, (999_990..=1_000_000).collect()),
        (200_000, 930_000, vec![]),
    ] {
        let options = ScanOptions {
            predicates: vec![Predicate::Between(
                "id".into(),
                Value::Int(low),
                Value::Int(high),
            )],
            exact: true,
            batch_size: 4096,
            ..ScanOptions::default()
        };
        let mut got = Vec::new();
        for batch in engine.scan(&snapshot, "db", "k", options).unwrap() {
            let ids: Vec<i64> = batch
                .unwrap()
                .column(0)
                .as_primitive::<Int64Type>()
                .values()
                .to_vec();
            assert!(
                ids.iter().all(|i| *i < 200_000) || ids.iter().all(|i| *i > 930_000),
                "a batch mixes two row groups"
            );
            got.extend(ids);
        }
        got.sort_unstable();
        assert_eq!(got, expected, "{low}..={high}");
    }
    // A whole scan in batches of 8 Ki rows: the first row group's last batch is short, not
    // filled from the next one.
    let mut sizes = Vec::new();
    let options = ScanOptions {
        batch_size: 8192,
        ..ScanOptions::default()
    };
    for batch in engine.scan(&snapshot, "db", "k", options).unwrap() {
        let batch = batch.unwrap();
        let ids = batch.column(0).as_primitive::<Int64Type>();
        assert!(
            ids.values().iter().all(|i| *i < 200_000) || ids.values().iter().all(|i| *i > 930_000),
            "a batch mixes two row groups"
        );
        sizes.push(batch.num_rows());
    }
    assert_eq!(sizes.iter().sum::<usize>(), 270_000);
}
