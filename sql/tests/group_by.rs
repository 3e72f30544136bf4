//! GROUP BY on dictionary codes (`shale_sql::group_by`) gives the rows DataFusion's own
//! aggregate gives: the same queries run in a context with the rule and in one without, over
//! segments with different dictionaries, NULL keys, empty strings, long strings, a column stored
//! without a dictionary, and with the early emission of partial state forced on every batch.

use std::sync::Arc;

use arrow::array::Array;
use arrow::util::display::array_value_to_string;

use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use shale_engine::Engine;
use shale_sql::Session;
use shale_sql::group_by::DictionaryGroupBy;
use shale_sql::provider::{CATALOG_NAME, ShaleCatalog};

fn engine_with_events(dir: &std::path::Path) -> Engine {
    let engine = Engine::open(dir).expect("open");
    let mut session = Session::new(engine.clone(), "root").expect("session");
    session
        .execute(
            "CREATE DATABASE s; USE s;
             CREATE TABLE ev (id INT NOT NULL, region VARCHAR(40), city VARCHAR(40), amount DOUBLE)
             DUPLICATE KEY(id)
             PARTITION BY RANGE(id) (PARTITION p1 VALUES LESS THAN ('2000'), PARTITION p2 VALUES LESS THAN ('100000'))
             DISTRIBUTED BY HASH(id) BUCKETS 3",
        )
        .expect("create");
    // Three loads, so each tablet has segments with different dictionaries (the second load
    // brings a value the first has not, the third leaves one out).
    let loads = [
        (
            1,
            3000,
            "CASE value % 5 WHEN 0 THEN 'north' WHEN 1 THEN 'south' WHEN 2 THEN 'a region name over twelve bytes' WHEN 3 THEN '' ELSE NULL END",
        ),
        (
            3001,
            5000,
            "CASE value % 3 WHEN 0 THEN 'east' WHEN 1 THEN 'north' ELSE NULL END",
        ),
        (
            5001,
            6000,
            "CASE value % 2 WHEN 0 THEN 'south' ELSE 'west' END",
        ),
    ];
    for (from, to, region) in loads {
        session
            .execute(&format!(
                "INSERT INTO ev SELECT CAST(value AS INT), {region},
                   concat('city-', CAST(value AS VARCHAR)), CAST(value % 7 AS DOUBLE)
                 FROM generate_series({from}, {to})"
            ))
            .expect("insert");
    }
    engine
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime")
}

fn context(engine: &Engine, rule: Option<DictionaryGroupBy>) -> SessionContext {
    let config = SessionConfig::new()
        .with_target_partitions(2)
        .with_default_catalog_and_schema(CATALOG_NAME, "s");
    let mut builder = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features();
    if let Some(rule) = rule {
        builder = builder.with_physical_optimizer_rule(Arc::new(rule));
    }
    let ctx = SessionContext::new_with_state(builder.build());
    ctx.register_catalog(
        CATALOG_NAME,
        Arc::new(ShaleCatalog::new(engine.clone(), engine.snapshot())),
    );
    ctx
}

/// The rows of `sql`, each as its cells' text ("NULL" for null), sorted.
fn rows(ctx: &SessionContext, sql: &str) -> Vec<Vec<String>> {
    let batches = runtime()
        .block_on(async { ctx.sql(sql).await?.collect().await })
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut rows = Vec::new();
    for batch in &batches {
        for row in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| match c.is_null(row) {
                        true => "NULL".to_owned(),
                        false => array_value_to_string(c, row).expect("cell"),
                    })
                    .collect(),
            );
        }
    }
    rows.sort();
    rows
}

fn plan(ctx: &SessionContext, sql: &str) -> String {
    let batches = runtime()
        .block_on(async { ctx.sql(&format!("EXPLAIN {sql}")).await?.collect().await })
        .expect("explain");
    arrow::util::pretty::pretty_format_batches(&batches)
        .expect("format")
        .to_string()
}

const USES_DICTIONARY: &[&str] = &[
    "SELECT region, sum(amount) AS s, count(*) AS n FROM ev GROUP BY region",
    "SELECT region, min(amount), max(amount), avg(amount), count(amount) FROM ev GROUP BY region",
    // An aggregate that reads the group column itself.
    "SELECT region, count(region), min(region), max(city) FROM ev GROUP BY region",
    // A column the segments store without a dictionary (every value distinct).
    "SELECT city, sum(amount) FROM ev GROUP BY city",
    "SELECT region, sum(id) FROM ev GROUP BY region HAVING sum(id) > 100",
    // Filters the engine prunes with stay above as DataFusion filters: not this rule's shape.
];

const KEEPS_DATAFUSION: &[&str] = &[
    "SELECT region, count(DISTINCT city) FROM ev GROUP BY region",
    "SELECT region, sum(amount) FILTER (WHERE id > 10) FROM ev GROUP BY region",
    "SELECT region, city, count(*) FROM ev GROUP BY region, city",
    "SELECT region, count(*) FROM ev WHERE amount > 2 GROUP BY region",
    "SELECT id % 3, count(*) FROM ev GROUP BY id % 3",
];

#[test]
fn dictionary_group_by_gives_datafusions_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = engine_with_events(dir.path());
    let plain = context(&engine, None);
    let fused = context(&engine, Some(DictionaryGroupBy::default()));
    // Partial state emitted after every group: the final aggregate merges many partial rows
    // per group.
    let eager = context(&engine, Some(DictionaryGroupBy::with_max_groups(1)));
    for sql in USES_DICTIONARY {
        assert!(
            plan(&fused, sql).contains("DictionaryAggregateExec"),
            "{sql}: {}",
            plan(&fused, sql)
        );
        let expected = rows(&plain, sql);
        assert!(!expected.is_empty(), "{sql}");
        assert_eq!(rows(&fused, sql), expected, "{sql}");
        assert_eq!(rows(&eager, sql), expected, "{sql}");
    }
    for sql in KEEPS_DATAFUSION {
        assert!(
            !plan(&fused, sql).contains("DictionaryAggregateExec"),
            "{sql}: {}",
            plan(&fused, sql)
        );
        assert_eq!(rows(&fused, sql), rows(&plain, sql), "{sql}");
    }
}

/// The groups are what the loads wrote: NULL and the empty string are groups of their own, and a
/// value present in only one load's dictionary is counted once.
#[test]
fn dictionary_groups_count_each_row_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = engine_with_events(dir.path());
    let fused = context(&engine, Some(DictionaryGroupBy::with_max_groups(2)));
    let got = rows(
        &fused,
        "SELECT coalesce(region, '<null>') AS r, count(*) AS n FROM ev GROUP BY region",
    );
    // Load 1 (1..=3000): 600 of each of the five cases. Load 2 (3001..=5000): 666 east (value %
    // 3 == 0), 667 north, 667 NULL. Load 3 (5001..=6000): 500 south, 500 west.
    let expected = [
        ("<null>", 600 + 667),
        ("", 600),
        ("a region name over twelve bytes", 600),
        ("east", 666),
        ("north", 600 + 667),
        ("south", 600 + 500),
        ("west", 500),
    ];
    let mut want: Vec<Vec<String>> = expected
        .iter()
        .map(|(r, n)| vec![r.to_string(), n.to_string()])
        .collect();
    want.sort();
    assert_eq!(got, want);
}
