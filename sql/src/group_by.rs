//! GROUP BY one string column on dictionary codes: StarRocks' low-cardinality optimisation, for
//! a partial aggregate straight over a shale table.
//!
//! DataFusion's partial aggregate hashes every row's string into its group map; on the
//! benchmark's `GROUP BY region` that was 38% of the query (`ArrowBytesViewMap::insert_if_new`
//! and string hashing, BENCHMARKS.md). A segment already stores such a column as a Parquet
//! dictionary: a few distinct strings and an integer key per row. [`DictionaryGroupBy`], a
//! physical optimiser rule run after DataFusion's own, replaces `AggregateExec(Partial)` over a
//! [`ShaleScanExec`] with a [`DictionaryAggregateExec`], which scans the group column as
//! `Dictionary(Int32, Utf8)` and finds each row's group by its key: one table lookup per row, and
//! one hash lookup per distinct string of each row group. The aggregates themselves are
//! DataFusion's own `GroupsAccumulator`s, and the node emits exactly the partial state batches
//! the aggregate it replaces would, so the final aggregate above is unchanged.
//!
//! The rule applies only where that is clearly equivalent: one plain column as the only group
//! key, no grouping sets, no `FILTER`, `DISTINCT` or `ORDER BY` inside an aggregate, every
//! aggregate with a `GroupsAccumulator`, no limit on the groups, and no operator between the
//! aggregate and the scan (a `WHERE` the engine cannot apply exactly keeps DataFusion's plan).
//! Memory stays bounded: after [`MAX_GROUPS`] groups the partial state is emitted and started
//! afresh, which a partial aggregate may always do.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow::array::{
    Array, ArrayRef, AsArray, DictionaryArray, RecordBatch, StringArray, StringViewArray,
};
use arrow::datatypes::{DataType, Int32Type, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result};
use datafusion::config::ConfigOptions;
use datafusion::execution::{RecordBatchStream, TaskContext};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use futures::Stream;

use crate::provider::{ScanPartition, ShaleScanExec, leaf_with_children, partition_of};

/// Groups held before a partial aggregate emits its state and starts again.
pub const MAX_GROUPS: usize = 64 * 1024;

/// The physical optimiser rule; see the module documentation.
#[derive(Debug, Default)]
pub struct DictionaryGroupBy {
    /// Groups held before emitting (tests lower it to exercise the early emission).
    max_groups: Option<usize>,
}

impl DictionaryGroupBy {
    /// The rule, emitting partial state every `max_groups` groups instead of [`MAX_GROUPS`].
    pub fn with_max_groups(max_groups: usize) -> DictionaryGroupBy {
        DictionaryGroupBy {
            max_groups: Some(max_groups.max(1)),
        }
    }
}

impl PhysicalOptimizerRule for DictionaryGroupBy {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let max_groups = self.max_groups.unwrap_or(MAX_GROUPS);
        plan.transform_up(|node| {
            let Some(aggregate) = node.downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            Ok(
                match DictionaryAggregateExec::replacing(aggregate, max_groups) {
                    Some(exec) => Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>),
                    None => Transformed::no(node),
                },
            )
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "shale_dictionary_group_by"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A partial aggregate grouping by one string column of a shale scan, on its dictionary codes.
#[derive(Debug)]
pub struct DictionaryAggregateExec {
    partitions: Vec<ScanPartition>,
    /// What the plan showed: the table and the aggregate's display.
    label: String,
    /// The group column's index in the scanned batches.
    group_column: usize,
    /// The scanned batch with the group column in its planned layout, for aggregates whose
    /// arguments read it (`min(region)`): `None` when none does.
    planned_input: Option<SchemaRef>,
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
    /// The partial aggregate's output: group column, then each aggregate's state fields.
    schema: SchemaRef,
    max_groups: usize,
    properties: Arc<PlanProperties>,
}

impl DictionaryAggregateExec {
    /// The node standing in for `aggregate`, if the rule applies to it.
    fn replacing(aggregate: &AggregateExec, max_groups: usize) -> Option<DictionaryAggregateExec> {
        if *aggregate.mode() != AggregateMode::Partial
            || aggregate.limit_options().is_some()
            || !aggregate.dynamic_expressions_produced().is_empty()
            || aggregate.filter_expr().iter().any(Option::is_some)
        {
            return None;
        }
        let group_by = aggregate.group_expr();
        if group_by.has_grouping_set() || group_by.expr().len() != 1 {
            return None;
        }
        let group_column = group_by.expr()[0].0.downcast_ref::<Column>()?.index();
        let aggregates = aggregate.aggr_expr();
        if aggregates.iter().any(|a| {
            a.is_distinct() || !a.order_bys().is_empty() || !a.groups_accumulator_supported()
        }) {
            return None;
        }
        let scan = aggregate.input().downcast_ref::<ShaleScanExec>()?;
        if scan.limit().is_some() {
            return None;
        }
        let group_type = aggregate.schema().fields().first()?.data_type().clone();
        if !matches!(group_type, DataType::Utf8 | DataType::Utf8View) {
            return None;
        }
        let (partitions, _) = scan.with_dictionary(group_column)?;
        let reads_group_column = aggregates.iter().any(|a| {
            a.expressions()
                .iter()
                .any(|e| collect_columns(e).iter().any(|c| c.index() == group_column))
        });
        let schema = aggregate.schema();
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(partitions.len()),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        let aggr_names: Vec<&str> = aggregates.iter().map(|a| a.name()).collect();
        Some(DictionaryAggregateExec {
            label: format!(
                "gby=[{}], aggr=[{}], {}",
                group_by.expr()[0].1,
                aggr_names.join(", "),
                datafusion::physical_plan::displayable(scan).one_line()
            )
            .trim_end()
            .to_string(),
            partitions,
            group_column,
            planned_input: reads_group_column.then(|| scan.schema()),
            aggregates: aggregates.to_vec(),
            schema,
            max_groups,
            properties,
        })
    }
}

impl DisplayAs for DictionaryAggregateExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "DictionaryAggregateExec: mode=Partial, {}", self.label)
    }
}

impl ExecutionPlan for DictionaryAggregateExec {
    fn name(&self) -> &str {
        "DictionaryAggregateExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        leaf_with_children(self, children)
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = partition_of(self.name(), &self.partitions, partition)?;
        Ok(Box::pin(GroupStream {
            input: Some(input.batches()),
            groups: Groups::new(&self.aggregates)?,
            group_column: self.group_column,
            planned_input: self.planned_input.clone(),
            aggregates: self.aggregates.clone(),
            schema: self.schema.clone(),
            max_groups: self.max_groups,
            group_indices: Vec::new(),
        }))
    }
}

/// The groups seen so far and their accumulators.
struct Groups {
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    /// Group index of each distinct value (`None`: NULL).
    index: HashMap<Option<String>, usize>,
    /// Value of each group, by index.
    values: Vec<Option<String>>,
    /// The dictionary of the last batch (its values array) and the group of each of its keys
    /// (`usize::MAX`: not met yet). The batches of one row group share one dictionary.
    dictionary: Option<(ArrayRef, Vec<usize>)>,
}

impl Groups {
    fn new(aggregates: &[Arc<AggregateFunctionExpr>]) -> Result<Groups> {
        Ok(Groups {
            accumulators: aggregates
                .iter()
                .map(|a| a.create_groups_accumulator())
                .collect::<Result<_>>()?,
            index: HashMap::new(),
            values: Vec::new(),
            dictionary: None,
        })
    }

    fn group_of(&mut self, value: Option<&str>) -> usize {
        let value = value.map(str::to_owned);
        if let Some(&g) = self.index.get(&value) {
            return g;
        }
        let g = self.values.len();
        self.values.push(value.clone());
        self.index.insert(value, g);
        g
    }

    /// Appends the group of each row of `column` (`Dictionary(Int32, Utf8)`) to `out`.
    fn assign(&mut self, column: &DictionaryArray<Int32Type>, out: &mut Vec<usize>) -> Result<()> {
        let values = column.values();
        let strings = values
            .as_string_opt::<i32>()
            .ok_or_else(|| DataFusionError::Internal("dictionary of non-strings".into()))?;
        let same = matches!(&self.dictionary, Some((v, _)) if Arc::ptr_eq(v, values));
        if !same {
            self.dictionary = Some((values.clone(), vec![usize::MAX; values.len()]));
        }
        let mut dictionary = self.dictionary.take().map(|(_, g)| g).unwrap_or_default();
        let keys = column.keys();
        let result = (|| {
            let nulls = keys.null_count() > 0;
            for (row, key) in keys.values().iter().enumerate() {
                if nulls && keys.is_null(row) {
                    out.push(self.group_of(None));
                    continue;
                }
                let key = usize::try_from(*key).ok().filter(|k| *k < dictionary.len());
                let Some(key) = key else {
                    return Err(DataFusionError::Internal(
                        "dictionary key out of range".into(),
                    ));
                };
                let mut g = dictionary[key];
                if g == usize::MAX {
                    g = self.group_of(strings.is_valid(key).then(|| strings.value(key)));
                    dictionary[key] = g;
                }
                out.push(g);
            }
            Ok(())
        })();
        self.dictionary = Some((values.clone(), dictionary));
        result
    }

    /// The partial state of every group, in `schema`; the groups start afresh.
    fn emit(
        &mut self,
        schema: &SchemaRef,
        aggregates: &[Arc<AggregateFunctionExpr>],
    ) -> Result<RecordBatch> {
        let values = std::mem::take(&mut self.values);
        let group: ArrayRef = match schema.field(0).data_type() {
            DataType::Utf8View => Arc::new(StringViewArray::from_iter(values)),
            _ => Arc::new(StringArray::from_iter(values)),
        };
        let mut columns = vec![group];
        for accumulator in &mut self.accumulators {
            columns.extend(accumulator.state(EmitTo::All)?);
        }
        *self = Groups::new(aggregates)?;
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

/// One partition's partial aggregate: a batch of the scan per poll, the state at the end (and
/// whenever [`MAX_GROUPS`] groups are held).
struct GroupStream {
    input: Option<Box<dyn Iterator<Item = Result<RecordBatch>> + Send>>,
    groups: Groups,
    group_column: usize,
    planned_input: Option<SchemaRef>,
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
    schema: SchemaRef,
    max_groups: usize,
    group_indices: Vec<usize>,
}

impl GroupStream {
    fn update(&mut self, batch: RecordBatch) -> Result<()> {
        let column = batch.column(self.group_column);
        let cast;
        let dictionary = match column.as_dictionary_opt::<Int32Type>() {
            Some(d) => d,
            None => {
                let wanted =
                    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
                cast = arrow::compute::cast(column, &wanted)?;
                cast.as_dictionary::<Int32Type>()
            }
        };
        self.group_indices.clear();
        self.groups.assign(dictionary, &mut self.group_indices)?;
        // Arguments that read the group column get it in the layout they were planned for.
        let batch = match &self.planned_input {
            Some(schema) => {
                let mut columns = batch.columns().to_vec();
                columns[self.group_column] = arrow::compute::cast(
                    &columns[self.group_column],
                    schema.field(self.group_column).data_type(),
                )?;
                RecordBatch::try_new(schema.clone(), columns)?
            }
            None => batch,
        };
        let total = self.groups.values.len();
        for (aggregate, accumulator) in self.aggregates.iter().zip(&mut self.groups.accumulators) {
            let arguments = aggregate
                .expressions()
                .iter()
                .map(|e| e.evaluate(&batch)?.into_array(batch.num_rows()))
                .collect::<Result<Vec<_>>>()?;
            accumulator.update_batch(&arguments, &self.group_indices, None, total)?;
        }
        Ok(())
    }
}

impl Stream for GroupStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(input) = this.input.as_mut() else {
            return Poll::Ready(None);
        };
        match input.next() {
            Some(Ok(batch)) => {
                if let Err(e) = this.update(batch) {
                    this.input = None;
                    return Poll::Ready(Some(Err(e)));
                }
                if this.groups.values.len() >= this.max_groups {
                    return Poll::Ready(Some(this.groups.emit(&this.schema, &this.aggregates)));
                }
                // One batch per poll: the task yields between batches, so it can be cancelled
                // and shares its thread.
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Some(Err(e)) => {
                this.input = None;
                Poll::Ready(Some(Err(e)))
            }
            None => {
                this.input = None;
                if this.groups.values.is_empty() {
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(this.groups.emit(&this.schema, &this.aggregates)))
            }
        }
    }
}

impl RecordBatchStream for GroupStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
