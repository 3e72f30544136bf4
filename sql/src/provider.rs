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
//!
//! A table scan is `target_partitions` DataFusion partitions over one engine [`ScanTasks`]: each
//! partition claims the next unread segment when it needs rows and decodes it inside its own
//! poll, so the operator above gets each batch on the thread (and in the cache) that decoded it.
//! Before, one thread forwarded batches from the engine's scan threads, which on 2 cores ran
//! beside DataFusion's 2 and handed every 64 Ki-row batch across cores.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider, Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{
    Between, BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType, expr::InList,
};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use shale_engine::{
    ColumnType, Engine, Predicate, ScanOptions, ScanTasks, SegmentScan, Snapshot, Table, Value,
    with_string_views,
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
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        let full = self.schema();
        let schema = match projection {
            Some(p) => Arc::new(full.project(p)?),
            None => full,
        };
        let config = state.config();
        let options = ScanOptions {
            projection: projection.cloned(),
            predicates: filters
                .iter()
                .filter_map(|f| to_predicate(&self.table, f))
                .collect(),
            // Batches of the size DataFusion's operators are tuned for; they stay in the cache
            // between the decoder and the operator above it.
            batch_size: config.batch_size(),
            // DataFusion filters the rows again (the pushdown is Inexact).
            exact: false,
            string_views: true,
            ..ScanOptions::default()
        };
        // Each partition decodes segments on the thread DataFusion polls it from. With a limit,
        // one partition reads the segments in order and stops after the first `limit` rows.
        let partitions = match limit {
            Some(_) => 1,
            None => config.target_partitions().max(1),
        };
        let scan = Arc::new(SharedScan {
            engine: self.engine.clone(),
            snapshot: self.snapshot.clone(),
            db: self.db.clone(),
            table: self.table.name.clone(),
            options,
            runs: Mutex::new(Vec::new()),
        });
        // DataFusion passes a limit only when no filter stays above the scan (ours are all
        // Inexact), so the first `limit` rows read are the ones wanted.
        Ok(Arc::new(ShaleScanExec::new(
            scan, schema, partitions, limit,
        )))
    }
}

/// A table's scan in a DataFusion plan: `partitions` partitions sharing one engine scan (see
/// [`SharedScan`]). Its own plan node, rather than a generic streaming table, so that
/// [`crate::group_by`] can recognise a GROUP BY straight over a shale table.
#[derive(Debug)]
pub(crate) struct ShaleScanExec {
    pub(crate) scan: Arc<SharedScan>,
    partitions: Vec<ScanPartition>,
    limit: Option<usize>,
    properties: Arc<PlanProperties>,
}

impl ShaleScanExec {
    fn new(
        scan: Arc<SharedScan>,
        schema: SchemaRef,
        partitions: usize,
        limit: Option<usize>,
    ) -> ShaleScanExec {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        ShaleScanExec {
            partitions: (0..partitions)
                .map(|_| ScanPartition::new(scan.clone(), schema.clone(), limit))
                .collect(),
            scan,
            limit,
            properties,
        }
    }

    /// The rows' limit pushed into the scan, if any.
    pub(crate) fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// The same scan, with its column `column` (an index into its schema, a string column)
    /// decoded as `Dictionary(Int32, Utf8)`: its partitions, and the schema they produce.
    pub(crate) fn with_dictionary(&self, column: usize) -> Option<(Vec<ScanPartition>, SchemaRef)> {
        let schema = self.schema();
        let field = schema.fields().get(column)?;
        if !matches!(field.data_type(), DataType::Utf8 | DataType::Utf8View) {
            return None;
        }
        let mut options = self.scan.options.clone();
        let in_table = match &options.projection {
            Some(p) => *p.get(column)?,
            None => column,
        };
        options.dictionary_columns = vec![in_table];
        let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        let mut fields: Vec<_> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields[column] = fields[column].clone().with_data_type(dictionary);
        let schema = Arc::new(arrow::datatypes::Schema::new_with_metadata(
            fields,
            schema.metadata().clone(),
        ));
        let scan = Arc::new(SharedScan {
            engine: self.scan.engine.clone(),
            snapshot: self.scan.snapshot.clone(),
            db: self.scan.db.clone(),
            table: self.scan.table.clone(),
            options,
            runs: Mutex::new(Vec::new()),
        });
        let partitions = (0..self.partitions.len())
            .map(|_| ScanPartition::new(scan.clone(), schema.clone(), None))
            .collect();
        Some((partitions, schema))
    }
}

impl DisplayAs for ShaleScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "ShaleScanExec: {}.{}, partitions={}",
            self.scan.db,
            self.scan.table,
            self.partitions.len()
        )?;
        if let Some(limit) = self.limit {
            write!(f, ", limit={limit}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for ShaleScanExec {
    fn name(&self) -> &str {
        "ShaleScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> datafusion::common::Result<TreeNodeRecursion>,
    ) -> datafusion::common::Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        leaf_with_children(self, children)
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> datafusion::common::Result<SendableRecordBatchStream> {
        Ok(partition_of(self.name(), &self.partitions, partition)?.execute())
    }
}

/// `with_new_children` of a plan node that has none (a scan): itself, if given none.
pub(crate) fn leaf_with_children(
    node: Arc<dyn ExecutionPlan>,
    children: Vec<Arc<dyn ExecutionPlan>>,
) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
    if !children.is_empty() {
        return Err(DataFusionError::Internal(format!(
            "{} has no children",
            node.name()
        )));
    }
    Ok(node)
}

/// Partition `partition` of node `name`'s scan partitions.
pub(crate) fn partition_of<'a>(
    name: &str,
    partitions: &'a [ScanPartition],
    partition: usize,
) -> datafusion::common::Result<&'a ScanPartition> {
    partitions.get(partition).ok_or_else(|| {
        DataFusionError::Internal(format!(
            "{name} has {} partitions, not {}",
            partitions.len(),
            partition + 1
        ))
    })
}

/// One engine scan shared by the partitions of a plan: each partition claims the next unread
/// segment when it needs rows, so a partition whose thread runs slower (another query, another
/// process on the core) simply reads fewer segments.
#[derive(Debug)]
pub(crate) struct SharedScan {
    engine: Engine,
    snapshot: Snapshot,
    db: String,
    table: String,
    options: ScanOptions,
    /// The segments of each run of the plan: the n-th execution of every partition shares the
    /// n-th entry (a plan may run more than once, e.g. the recursive term of a CTE), so each run
    /// reads every segment exactly once.
    runs: Mutex<Vec<Arc<ScanTasks>>>,
}

impl SharedScan {
    fn run(&self, run: usize) -> Result<Arc<ScanTasks>, shale_engine::Error> {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        while runs.len() <= run {
            let tasks = self.engine.scan_tasks(
                &self.snapshot,
                &self.db,
                &self.table,
                self.options.clone(),
            )?;
            runs.push(Arc::new(tasks));
        }
        Ok(runs[run].clone())
    }
}

/// One partition of a table's scan.
#[derive(Debug)]
pub(crate) struct ScanPartition {
    scan: Arc<SharedScan>,
    schema: SchemaRef,
    /// How often this partition was executed: the index of its next run.
    runs_started: AtomicUsize,
    /// Stop reading once this many rows were produced (`LIMIT` pushed down).
    limit: Option<usize>,
}

impl ScanPartition {
    fn new(scan: Arc<SharedScan>, schema: SchemaRef, limit: Option<usize>) -> ScanPartition {
        ScanPartition {
            scan,
            schema,
            runs_started: AtomicUsize::new(0),
            limit,
        }
    }

    /// The batches of this partition's next run, decoded as they are pulled.
    pub(crate) fn batches(
        &self,
    ) -> Box<dyn Iterator<Item = datafusion::common::Result<RecordBatch>> + Send> {
        let run = self.runs_started.fetch_add(1, Ordering::Relaxed);
        let to_df = |e: shale_engine::Error| DataFusionError::External(Box::new(e));
        let batches: Box<dyn Iterator<Item = datafusion::common::Result<RecordBatch>> + Send> =
            match self.scan.run(run) {
                Ok(tasks) => Box::new(PartitionBatches {
                    tasks,
                    segment: None,
                    rows_left: self.limit.unwrap_or(usize::MAX),
                    done: false,
                }),
                Err(e) => Box::new(std::iter::once(Err(to_df(e)))),
            };
        batches
    }

    fn execute(&self) -> SendableRecordBatchStream {
        // Decoding is CPU work like any operator's: it runs inside the poll, on DataFusion's
        // thread, one batch per poll.
        Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            futures::stream::iter(self.batches()),
        ))
    }
}

/// The batches one partition decodes: segment after segment, claimed from the shared scan,
/// until none is left, `limit` rows were produced, or an error.
struct PartitionBatches {
    tasks: Arc<ScanTasks>,
    segment: Option<SegmentScan>,
    rows_left: usize,
    done: bool,
}

impl Iterator for PartitionBatches {
    type Item = datafusion::common::Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let to_df = |e: shale_engine::Error| DataFusionError::External(Box::new(e));
        while !self.done && self.rows_left > 0 {
            let segment = match &mut self.segment {
                Some(segment) => segment,
                None => match self.tasks.next_segment() {
                    Some(Ok(segment)) => self.segment.insert(segment),
                    Some(Err(e)) => {
                        self.done = true;
                        return Some(Err(to_df(e)));
                    }
                    None => {
                        self.done = true;
                        return None;
                    }
                },
            };
            match segment.next() {
                Some(Ok(batch)) => {
                    let rows = batch.num_rows().min(self.rows_left);
                    self.rows_left -= rows;
                    return Some(Ok(batch.slice(0, rows)));
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(to_df(e)));
                }
                None => self.segment = None,
            }
        }
        None
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

    /// The provider of table `table` of database `d`, at the engine's current snapshot.
    fn provider_of(engine: &Engine, table: Arc<Table>) -> ShaleTable {
        ShaleTable {
            engine: engine.clone(),
            snapshot: engine.snapshot(),
            db: "d".into(),
            table,
        }
    }

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
        let stream = partition.execute();
        futures::executor::block_on(stream.collect::<Vec<_>>())
    }

    #[test]
    fn a_limit_stops_the_scan_before_later_segments_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (engine, table) = table_with_a_corrupt_second_partition(dir.path());
        let partition = |limit| ScanPartition {
            scan: Arc::new(SharedScan {
                engine: engine.clone(),
                snapshot: engine.snapshot(),
                db: "d".into(),
                table: "t".into(),
                options: ScanOptions::default(),
                runs: Mutex::new(Vec::new()),
            }),
            schema: table.schema.arrow_schema().clone(),
            runs_started: AtomicUsize::new(0),
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
        let provider = provider_of(&engine, table);
        let ctx = SessionContext::new();
        let state = ctx.state();
        let plan =
            futures::executor::block_on(provider.scan(&state, None, &[], Some(7))).expect("plan");
        let batches =
            futures::executor::block_on(datafusion::physical_plan::collect(plan, ctx.task_ctx()))
                .expect("a limited scan never reaches the corrupt partition");
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 7);
    }

    /// A table of 4 RANGE partitions × 3 buckets holding the keys 0..400, one segment per tablet.
    fn table_of_twelve_segments(dir: &std::path::Path) -> (Engine, Arc<Table>) {
        use arrow::array::Int32Array;
        use shale_engine::{
            Column, Distribution, PartitionDefinition, PartitionValues, Partitioning,
            TableDefinition,
        };

        let engine = Engine::open(dir).expect("engine");
        engine.create_database("d").expect("database");
        let mut def = TableDefinition::new("t", vec![Column::new("k", ColumnType::Int).key()]);
        def.partitioning = Partitioning::Range { column: "k".into() };
        def.partitions = (1..=4)
            .map(|i| PartitionDefinition {
                name: format!("p{i}"),
                values: PartitionValues::LessThan(Some((i * 100).to_string())),
            })
            .collect();
        def.distribution = Distribution::hash(vec!["k".into()], 3);
        engine.create_table("d", def).expect("table");
        let schema = engine
            .snapshot()
            .get_table("d", "t")
            .expect("table")
            .schema
            .arrow_schema()
            .clone();
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(Int32Array::from_iter_values(0..400))])
                .expect("batch");
        engine.load("d", "t", [batch]).expect("load");
        let table = engine
            .snapshot()
            .get_table("d", "t")
            .expect("table")
            .clone();
        (engine, table)
    }

    fn keys(batches: &[RecordBatch]) -> Vec<i32> {
        let mut keys: Vec<i32> = batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<arrow::array::Int32Array>()
                    .expect("INT column")
                    .values()
                    .to_vec()
            })
            .collect();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn the_partitions_of_a_scan_read_every_segment_once_per_run() {
        use datafusion::physical_plan::ExecutionPlanProperties;
        use datafusion::prelude::{SessionConfig, SessionContext};
        use futures::StreamExt;

        let dir = tempfile::tempdir().expect("tempdir");
        let (engine, table) = table_of_twelve_segments(dir.path());
        let provider = provider_of(&engine, table);
        let ctx = SessionContext::new_with_config(
            SessionConfig::new()
                .with_target_partitions(3)
                .with_batch_size(16),
        );
        let state = ctx.state();
        let plan =
            futures::executor::block_on(provider.scan(&state, None, &[], None)).expect("plan");
        assert_eq!(plan.output_partitioning().partition_count(), 3);
        let expected: Vec<i32> = (0..400).collect();
        // Twice, as a plan may run more than once: each run reads all rows, once.
        for run in 0..2 {
            let mut streams: Vec<_> = (0..3)
                .map(|p| plan.execute(p, ctx.task_ctx()).expect("execute"))
                .collect();
            // The partitions take turns, one batch each, so all of them claim segments.
            let mut batches = Vec::new();
            let mut per_partition = [0usize; 3];
            let mut open = [true; 3];
            while open.iter().any(|o| *o) {
                for (p, stream) in streams.iter_mut().enumerate() {
                    if !open[p] {
                        continue;
                    }
                    match futures::executor::block_on(stream.next()) {
                        Some(batch) => {
                            let batch = batch.expect("batch");
                            assert!(batch.num_rows() <= 16, "batches are DataFusion-sized");
                            per_partition[p] += batch.num_rows();
                            batches.push(batch);
                        }
                        None => open[p] = false,
                    }
                }
            }
            assert_eq!(keys(&batches), expected, "run {run}");
            assert!(
                per_partition.iter().all(|rows| *rows > 0),
                "run {run}: every partition read some segments: {per_partition:?}"
            );
        }
    }

    #[test]
    fn one_partition_alone_reads_the_whole_table() {
        use datafusion::prelude::{SessionConfig, SessionContext};
        use futures::StreamExt;

        let dir = tempfile::tempdir().expect("tempdir");
        let (engine, table) = table_of_twelve_segments(dir.path());
        let provider = provider_of(&engine, table);
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
        let state = ctx.state();
        let plan =
            futures::executor::block_on(provider.scan(&state, None, &[], None)).expect("plan");
        // Partition 0 runs to its end before partition 1 starts: it claims every segment.
        let first = plan.execute(0, ctx.task_ctx()).expect("execute");
        let batches: Vec<RecordBatch> = futures::executor::block_on(first.collect::<Vec<_>>())
            .into_iter()
            .collect::<datafusion::common::Result<_>>()
            .expect("batches");
        assert_eq!(keys(&batches), (0..400).collect::<Vec<i32>>());
        let second = plan.execute(1, ctx.task_ctx()).expect("execute");
        let rest = futures::executor::block_on(second.collect::<Vec<_>>());
        assert!(rest.is_empty(), "the second partition found nothing left");
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
