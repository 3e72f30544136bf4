//! shale databases and tables as DataFusion catalog objects.
//!
//! A query sees one [`ShaleCatalog`] built around one engine [`Snapshot`], taken when the query
//! is planned: every table of the query, however often it appears, reads that same state, and
//! loads committed while the query runs are invisible to it.
//!
//! Tables show DataFusion their CHAR/VARCHAR/STRING columns as `Utf8View`, which the engine
//! decodes without copying string bytes and DataFusion groups, joins and compares faster than
//! `Utf8` (short strings are one integer); results go back to users as `Utf8`
//! ([`crate::query::collect`]).
//!
//! [`ShaleTable::scan`] pushes the projection into the engine and turns simple filters on one
//! column (`col op literal`, `BETWEEN`, `IN (...)`) into [`Predicate`]s that prune partitions
//! and segments. Pruning is inexact (DataFusion filters the rows again), so a filter we cannot
//! translate faithfully is simply not pushed.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider, Session, TableProvider};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{
    Between, BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType, expr::InList,
};
use datafusion::physical_expr::LexOrdering;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use futures::SinkExt;
use shale_engine::{
    ColumnType, Engine, Predicate, ScanOptions, Snapshot, Table, Value, with_string_views,
};

/// Name of the DataFusion catalog holding shale's databases.
pub const CATALOG_NAME: &str = "shale";

/// All databases of one snapshot, as DataFusion schemas.
#[derive(Debug)]
pub struct ShaleCatalog {
    engine: Engine,
    snapshot: Snapshot,
}

impl ShaleCatalog {
    /// The catalog as of `snapshot`.
    pub fn new(engine: Engine, snapshot: Snapshot) -> ShaleCatalog {
        ShaleCatalog { engine, snapshot }
    }
}

impl CatalogProvider for ShaleCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.snapshot.databases.keys().cloned().collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        let db = resolve_name(self.snapshot.databases.keys(), name)?;
        Some(Arc::new(ShaleSchema {
            engine: self.engine.clone(),
            snapshot: self.snapshot.clone(),
            db,
        }))
    }
}

/// DataFusion folds unquoted identifiers to lower case; shale names keep their case. An exact
/// match wins, otherwise a unique case-insensitive one.
fn resolve_name<'a>(names: impl Iterator<Item = &'a String>, wanted: &str) -> Option<String> {
    let mut folded = None;
    let mut folded_count = 0;
    for name in names {
        if name == wanted {
            return Some(name.clone());
        }
        if name.eq_ignore_ascii_case(wanted) {
            folded = Some(name.clone());
            folded_count += 1;
        }
    }
    if folded_count == 1 { folded } else { None }
}

/// The tables of one database of one snapshot.
#[derive(Debug)]
struct ShaleSchema {
    engine: Engine,
    snapshot: Snapshot,
    db: String,
}

#[async_trait]
impl SchemaProvider for ShaleSchema {
    fn table_names(&self) -> Vec<String> {
        self.snapshot
            .database(&self.db)
            .map(|d| d.tables.keys().cloned().collect())
            .unwrap_or_default()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        let Some(database) = self.snapshot.database(&self.db) else {
            return Ok(None);
        };
        let Some(name) = resolve_name(database.tables.keys(), name) else {
            return Ok(None);
        };
        let Some(table) = database.tables.get(&name) else {
            return Ok(None);
        };
        Ok(Some(Arc::new(ShaleTable {
            engine: self.engine.clone(),
            snapshot: self.snapshot.clone(),
            db: self.db.clone(),
            table: table.clone(),
        })))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.snapshot
            .database(&self.db)
            .is_some_and(|d| resolve_name(d.tables.keys(), name).is_some())
    }
}

/// One table of one snapshot.
#[derive(Debug)]
pub struct ShaleTable {
    engine: Engine,
    snapshot: Snapshot,
    db: String,
    table: Arc<Table>,
}

#[async_trait]
impl TableProvider for ShaleTable {
    fn schema(&self) -> SchemaRef {
        Arc::new(with_string_views(self.table.schema.arrow_schema()))
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::common::Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| match to_predicate(&self.table, f) {
                Some(_) => TableProviderFilterPushDown::Inexact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        let full = self.schema();
        let schema = match projection {
            Some(p) => Arc::new(full.project(p)?),
            None => full,
        };
        let options = ScanOptions {
            projection: projection.cloned(),
            predicates: filters
                .iter()
                .filter_map(|f| to_predicate(&self.table, f))
                .collect(),
            // DataFusion filters the rows again (the pushdown is Inexact).
            exact: false,
            string_views: true,
            ..ScanOptions::default()
        };
        let partition = Arc::new(ScanPartition {
            engine: self.engine.clone(),
            snapshot: self.snapshot.clone(),
            db: self.db.clone(),
            table: self.table.name.clone(),
            schema: schema.clone(),
            options,
            limit,
        });
        // DataFusion passes a limit only when no filter stays above the scan (ours are all
        // Inexact), so the first `limit` rows read are the ones wanted.
        let exec = StreamingTableExec::try_new(
            schema,
            vec![partition],
            None,
            Vec::<LexOrdering>::new(),
            false,
            limit,
        )?;
        Ok(Arc::new(exec))
    }
}

/// One engine scan, run on its own thread and fed to DataFusion through a small channel.
#[derive(Debug)]
struct ScanPartition {
    engine: Engine,
    snapshot: Snapshot,
    db: String,
    table: String,
    schema: SchemaRef,
    options: ScanOptions,
    /// Stop reading once this many rows were produced (`LIMIT` pushed down).
    limit: Option<usize>,
}

/// Batches in flight between the scan thread and DataFusion.
const SCAN_CHANNEL_BATCHES: usize = 2;

impl PartitionStream for ScanPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (mut sender, receiver) = futures::channel::mpsc::channel(SCAN_CHANNEL_BATCHES);
        let engine = self.engine.clone();
        let snapshot = self.snapshot.clone();
        let db = self.db.clone();
        let table = self.table.clone();
        let options = self.options.clone();
        let limit = self.limit;
        // ScanStream is a blocking iterator; keep it off the async runtime's threads. The
        // thread ends when the scan does, when `limit` rows were sent, or when DataFusion drops
        // the receiver; dropping the engine's stream then stops its decoding.
        std::thread::spawn(move || {
            let to_df = |e: shale_engine::Error| DataFusionError::External(Box::new(e));
            match engine.scan(&snapshot, &db, &table, options) {
                Ok(stream) => {
                    let mut rows_left = limit.unwrap_or(usize::MAX);
                    for item in stream {
                        if rows_left == 0 {
                            break;
                        }
                        let item = item.map_err(to_df).map(|batch| {
                            let rows = batch.num_rows().min(rows_left);
                            rows_left -= rows;
                            batch.slice(0, rows)
                        });
                        let failed = item.is_err();
                        if futures::executor::block_on(sender.send(item)).is_err()
                            || failed
                            || rows_left == 0
                        {
                            break;
                        }
                    }
                }
                Err(e) => {
                    let _ = futures::executor::block_on(sender.send(Err(to_df(e))));
                }
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), receiver))
    }
}

/// The engine predicate equivalent to a filter, if it is a simple one on one column.
fn to_predicate(table: &Table, filter: &Expr) -> Option<Predicate> {
    match filter {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (column, literal, op) = match (left.as_ref(), right.as_ref()) {
                (Expr::Column(c), Expr::Literal(v, _)) => (c, v, *op),
                (Expr::Literal(v, _), Expr::Column(c)) => (c, v, op.swap()?),
                _ => return None,
            };
            let (name, column_type) = column_of(table, &column.name)?;
            let value = to_value(literal, &column_type)?;
            Some(match op {
                Operator::Eq => Predicate::Eq(name, value),
                Operator::Lt => Predicate::Lt(name, value),
                Operator::LtEq => Predicate::Le(name, value),
                Operator::Gt => Predicate::Gt(name, value),
                Operator::GtEq => Predicate::Ge(name, value),
                _ => return None,
            })
        }
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) => {
            let (Expr::Column(c), Expr::Literal(low, _), Expr::Literal(high, _)) =
                (expr.as_ref(), low.as_ref(), high.as_ref())
            else {
                return None;
            };
            let (name, column_type) = column_of(table, &c.name)?;
            Some(Predicate::Between(
                name,
                to_value(low, &column_type)?,
                to_value(high, &column_type)?,
            ))
        }
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) => {
            let Expr::Column(c) = expr.as_ref() else {
                return None;
            };
            let (name, column_type) = column_of(table, &c.name)?;
            let values = list
                .iter()
                .map(|e| match e {
                    Expr::Literal(v, _) => to_value(v, &column_type),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            Some(Predicate::In(name, values))
        }
        _ => None,
    }
}

fn column_of(table: &Table, name: &str) -> Option<(String, ColumnType)> {
    let column = table.schema.column(name)?;
    Some((column.name.clone(), column.column_type))
}

/// The engine value of a literal compared with a column of `column_type`, when the literal's
/// type is the column's own (after DataFusion's coercion); NULL and anything else give `None`.
fn to_value(literal: &ScalarValue, column_type: &ColumnType) -> Option<Value> {
    let int = |v: Option<i128>| v.map(Value::Int);
    match (column_type, literal) {
        (ColumnType::TinyInt | ColumnType::SmallInt | ColumnType::Int | ColumnType::BigInt, _) => {
            match literal {
                ScalarValue::Int8(v) => int(v.map(i128::from)),
                ScalarValue::Int16(v) => int(v.map(i128::from)),
                ScalarValue::Int32(v) => int(v.map(i128::from)),
                ScalarValue::Int64(v) => int(v.map(i128::from)),
                _ => None,
            }
        }
        (ColumnType::LargeInt, ScalarValue::Decimal128(v, _, 0)) => int(*v),
        (ColumnType::Decimal { scale, .. }, ScalarValue::Decimal128(v, _, s))
            if i16::from(*s) == i16::from(*scale) =>
        {
            int(*v)
        }
        (ColumnType::Date, ScalarValue::Date32(v)) => int(v.map(i128::from)),
        (ColumnType::Datetime, ScalarValue::TimestampMicrosecond(v, None)) => {
            int(v.map(i128::from))
        }
        (ColumnType::Float, ScalarValue::Float32(v)) => v.map(|v| Value::Float(f64::from(v))),
        (ColumnType::Double, ScalarValue::Float64(v)) => v.map(Value::Float),
        (ColumnType::Boolean, ScalarValue::Boolean(v)) => v.map(Value::Bool),
        (
            ColumnType::Char(_) | ColumnType::Varchar(_) | ColumnType::String,
            ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v),
        ) => v.clone().map(Value::Str),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::RecordBatch;

    #[test]
    fn literals_convert_only_to_their_own_column_type() {
        assert_eq!(
            to_value(&ScalarValue::Int64(Some(7)), &ColumnType::Int),
            Some(Value::Int(7))
        );
        assert_eq!(to_value(&ScalarValue::Int64(None), &ColumnType::Int), None);
        assert_eq!(
            to_value(&ScalarValue::Utf8(Some("7".into())), &ColumnType::Int),
            None
        );
        assert_eq!(
            to_value(
                &ScalarValue::Decimal128(Some(150), 10, 2),
                &ColumnType::Decimal {
                    precision: 10,
                    scale: 1
                }
            ),
            None
        );
    }

    #[test]
    fn simple_filters_become_engine_predicates() {
        use datafusion::prelude::{col, lit};
        use shale_engine::{Column, TableDefinition};

        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("engine");
        engine.create_database("d").expect("database");
        let def = TableDefinition::new(
            "t",
            vec![
                Column::new("id", ColumnType::Int),
                Column::new("name", ColumnType::Varchar(10)),
            ],
        );
        engine.create_table("d", def).expect("table");
        let snapshot = engine.snapshot();
        let table = snapshot.get_table("d", "t").expect("table");

        let ge = col("id").gt_eq(lit(100i32));
        assert_eq!(
            to_predicate(table, &ge),
            Some(Predicate::Ge("id".into(), Value::Int(100)))
        );
        let flipped = lit(5i64).gt(col("id"));
        assert_eq!(
            to_predicate(table, &flipped),
            Some(Predicate::Lt("id".into(), Value::Int(5)))
        );
        let between = col("id").between(lit(1i32), lit(9i32));
        assert_eq!(
            to_predicate(table, &between),
            Some(Predicate::Between(
                "id".into(),
                Value::Int(1),
                Value::Int(9)
            ))
        );
        let in_list = col("name").in_list(vec![lit("a"), lit("b")], false);
        assert_eq!(
            to_predicate(table, &in_list),
            Some(Predicate::In(
                "name".into(),
                vec![Value::Str("a".into()), Value::Str("b".into())]
            ))
        );
        // Not simple: computed column, negation, NOT IN, unknown column, mismatched literal.
        assert_eq!(
            to_predicate(table, &(col("id") + lit(1i32)).gt(lit(5i32))),
            None
        );
        assert_eq!(to_predicate(table, &col("id").not_eq(lit(5i32))), None);
        assert_eq!(
            to_predicate(table, &col("id").in_list(vec![lit(1i32)], true)),
            None
        );
        assert_eq!(to_predicate(table, &col("nope").eq(lit(1i32))), None);
        assert_eq!(to_predicate(table, &col("name").eq(lit(1i32))), None);
    }

    /// A table of two RANGE partitions, rows 0..50 in `p1` and 100..150 in `p2`, on an engine
    /// with one decoding thread (so segments are read in partition order), with every segment
    /// file of `p2` overwritten by garbage.
    fn table_with_a_corrupt_second_partition(dir: &std::path::Path) -> (Engine, Arc<Table>) {
        use arrow::array::Int32Array;
        use shale_engine::{
            Column, EngineOptions, PartitionDefinition, PartitionValues, Partitioning,
            TableDefinition,
        };

        let options = EngineOptions {
            threads: 1,
            ..EngineOptions::default()
        };
        let engine = Engine::open_with(dir, options).expect("engine");
        engine.create_database("d").expect("database");
        let mut def = TableDefinition::new("t", vec![Column::new("k", ColumnType::Int).key()]);
        def.partitioning = Partitioning::Range { column: "k".into() };
        def.partitions = vec![
            PartitionDefinition {
                name: "p1".into(),
                values: PartitionValues::LessThan(Some("100".into())),
            },
            PartitionDefinition {
                name: "p2".into(),
                values: PartitionValues::LessThan(None),
            },
        ];
        engine.create_table("d", def).expect("table");
        let snapshot = engine.snapshot();
        let schema = snapshot
            .get_table("d", "t")
            .expect("table")
            .schema
            .arrow_schema()
            .clone();
        let keys: Vec<i32> = (0..50).chain(100..150).collect();
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(Int32Array::from(keys))]).expect("batch");
        engine.load("d", "t", [batch]).expect("load");
        let snapshot = engine.snapshot();
        let table = snapshot.get_table("d", "t").expect("table").clone();
        let p2 = table.partition("p2").expect("p2");
        let mut corrupted = 0;
        for segment in p2.segments() {
            std::fs::write(segment.full_path(), b"not a parquet file").expect("corrupt");
            corrupted += 1;
        }
        assert!(corrupted > 0, "p2 has no segment to corrupt");
        (engine, table)
    }

    fn run(partition: &ScanPartition) -> Vec<datafusion::common::Result<RecordBatch>> {
        use futures::StreamExt;
        let stream = partition.execute(Arc::new(TaskContext::default()));
        futures::executor::block_on(stream.collect::<Vec<_>>())
    }

    #[test]
    fn a_limit_stops_the_scan_before_later_segments_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (engine, table) = table_with_a_corrupt_second_partition(dir.path());
        let partition = |limit| ScanPartition {
            engine: engine.clone(),
            snapshot: engine.snapshot(),
            db: "d".into(),
            table: "t".into(),
            schema: table.schema.arrow_schema().clone(),
            options: ScanOptions::default(),
            limit,
        };

        // Without a limit the scan reaches p2 and reports its damage: the test data is sound.
        let all = run(&partition(None));
        assert!(
            all.iter().any(|r| r.is_err()),
            "the corrupt segment was not read"
        );

        // With one, the first rows come from p1 and p2 is never read.
        let limited = run(&partition(Some(10)));
        let batches: Vec<RecordBatch> = limited
            .into_iter()
            .collect::<datafusion::common::Result<_>>()
            .expect("a limited scan never reaches the corrupt partition");
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 10);
    }

    #[test]
    fn the_provider_passes_the_limit_to_its_scan() {
        use datafusion::prelude::SessionContext;

        let dir = tempfile::tempdir().expect("tempdir");
        let (engine, table) = table_with_a_corrupt_second_partition(dir.path());
        let provider = ShaleTable {
            engine: engine.clone(),
            snapshot: engine.snapshot(),
            db: "d".into(),
            table,
        };
        let ctx = SessionContext::new();
        let state = ctx.state();
        let plan =
            futures::executor::block_on(provider.scan(&state, None, &[], Some(7))).expect("plan");
        let batches =
            futures::executor::block_on(datafusion::physical_plan::collect(plan, ctx.task_ctx()))
                .expect("a limited scan never reaches the corrupt partition");
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 7);
    }

    #[test]
    fn names_resolve_exactly_then_case_insensitively() {
        let names = [
            "Sales".to_string(),
            "sales".to_string(),
            "Orders".to_string(),
        ];
        assert_eq!(resolve_name(names.iter(), "Sales"), Some("Sales".into()));
        assert_eq!(resolve_name(names.iter(), "orders"), Some("Orders".into()));
        assert_eq!(resolve_name(names.iter(), "SALES"), None);
    }
}
