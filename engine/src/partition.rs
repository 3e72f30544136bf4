//! Partitioning: how a table's rows are split into partitions, and routing rows to them.
//!
//! A table is unpartitioned (one partition named like the table), RANGE-partitioned on one
//! integral column (integers, DATE, DATETIME; each partition holds `[lower, upper)`, open ends
//! written MINVALUE/MAXVALUE), or LIST-partitioned on one column (each partition holds a set of
//! values). Ranges never overlap and a list value belongs to one partition only.

use std::collections::HashMap;
use std::fmt;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Int8Type, Int16Type, Int32Type, Int64Type, TimeUnit,
    TimestampMicrosecondType,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::types::{Column, ColumnType, TableSchema, Value};

/// How a table is partitioned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Partitioning {
    /// One partition, named like the table.
    Unpartitioned,
    /// RANGE on one integral column.
    Range {
        /// The partition column.
        column: String,
    },
    /// LIST on one column.
    List {
        /// The partition column.
        column: String,
    },
}

impl Partitioning {
    /// The partition column's name, if partitioned.
    pub fn column(&self) -> Option<&str> {
        match self {
            Partitioning::Unpartitioned => None,
            Partitioning::Range { column } | Partitioning::List { column } => Some(column),
        }
    }
}

/// The values of a partition as a user writes them (SQL literal text, unparsed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionValues {
    /// The whole table (unpartitioned tables only).
    All,
    /// `VALUES LESS THAN (upper)`; `None` is MAXVALUE. The lower bound is the greatest upper bound
    /// of the partitions below it.
    LessThan(Option<String>),
    /// `VALUES [(lower), (upper))`; `None` is MINVALUE / MAXVALUE.
    Range {
        /// Inclusive lower bound.
        lower: Option<String>,
        /// Exclusive upper bound.
        upper: Option<String>,
    },
    /// `VALUES IN (v1, v2, ...)`.
    In(Vec<String>),
}

/// A partition as a user defines it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionDefinition {
    /// Partition name, unique within its table.
    pub name: String,
    /// Its values.
    pub values: PartitionValues,
}

/// The resolved bounds of a partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartitionBound {
    /// Every row (unpartitioned table).
    All,
    /// `[lower, upper)`; `None` is unbounded.
    Range {
        /// Inclusive lower bound, `None` for MINVALUE.
        lower: Option<i128>,
        /// Exclusive upper bound, `None` for MAXVALUE.
        upper: Option<i128>,
    },
    /// A set of values.
    List(Vec<Value>),
}

impl PartitionBound {
    /// Whether two bounds share a value.
    pub fn overlaps(&self, other: &PartitionBound) -> bool {
        match (self, other) {
            (
                PartitionBound::Range {
                    lower: l1,
                    upper: u1,
                },
                PartitionBound::Range {
                    lower: l2,
                    upper: u2,
                },
            ) => {
                let below = |upper: &Option<i128>, lower: &Option<i128>| match (upper, lower) {
                    (Some(u), Some(l)) => u <= l,
                    _ => false,
                };
                !(below(u1, l2) || below(u2, l1))
            }
            (PartitionBound::List(a), PartitionBound::List(b)) => a.iter().any(|v| b.contains(v)),
            _ => true,
        }
    }

    /// Whether the bound may hold a row whose key lies in `[min, max]` (both inclusive).
    pub fn may_contain(&self, min: &Value, max: &Value) -> bool {
        match self {
            PartitionBound::All => true,
            PartitionBound::Range { lower, upper } => {
                let (Value::Int(min), Value::Int(max)) = (min, max) else {
                    return true;
                };
                lower.is_none_or(|l| *max >= l) && upper.is_none_or(|u| *min < u)
            }
            PartitionBound::List(values) => values.iter().any(|v| v >= min && v <= max),
        }
    }

    /// Renders the bound the way SHOW PARTITIONS does, with the partition column's type.
    pub fn describe(&self, column_type: Option<&ColumnType>) -> String {
        let lit = |v: &i128| match column_type {
            Some(t) => Value::Int(*v).to_literal(t),
            None => v.to_string(),
        };
        match self {
            PartitionBound::All => String::new(),
            PartitionBound::Range { lower, upper } => format!(
                "[{}, {})",
                lower.as_ref().map_or("MINVALUE".to_string(), lit),
                upper.as_ref().map_or("MAXVALUE".to_string(), lit)
            ),
            PartitionBound::List(values) => {
                let items: Vec<String> = values
                    .iter()
                    .map(|v| match column_type {
                        Some(t) => format!("'{}'", v.to_literal(t)),
                        None => format!("{v:?}"),
                    })
                    .collect();
                format!("({})", items.join(", "))
            }
        }
    }

    /// The bound as user-level values (the inverse of [`resolve_bound`] for a given type).
    pub fn to_values(&self, column_type: Option<&ColumnType>) -> PartitionValues {
        let lit = |v: &i128| match column_type {
            Some(t) => Value::Int(*v).to_literal(t),
            None => v.to_string(),
        };
        match self {
            PartitionBound::All => PartitionValues::All,
            PartitionBound::Range { lower, upper } => PartitionValues::Range {
                lower: lower.as_ref().map(lit),
                upper: upper.as_ref().map(lit),
            },
            PartitionBound::List(values) => PartitionValues::In(
                values
                    .iter()
                    .map(|v| match column_type {
                        Some(t) => v.to_literal(t),
                        None => format!("{v:?}"),
                    })
                    .collect(),
            ),
        }
    }
}

impl fmt::Display for PartitionBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(None))
    }
}

/// Checks a partitioning against the schema and returns the partition column.
pub fn partition_column<'a>(
    partitioning: &Partitioning,
    schema: &'a TableSchema,
) -> Result<Option<&'a Column>> {
    let Some(name) = partitioning.column() else {
        return Ok(None);
    };
    let column = schema
        .column(name)
        .ok_or_else(|| Error::InvalidDefinition(format!("Unknown partition column '{name}'")))?;
    match partitioning {
        Partitioning::Range { .. } if !column.column_type.is_integral() => {
            Err(Error::InvalidDefinition(format!(
                "RANGE partition column '{name}' must be an integer, DATE or DATETIME, not {}",
                column.column_type
            )))
        }
        Partitioning::List { .. }
            if matches!(
                column.column_type,
                ColumnType::Float | ColumnType::Double | ColumnType::Decimal { .. }
            ) =>
        {
            Err(Error::InvalidDefinition(format!(
                "LIST partition column '{name}' must not be {}",
                column.column_type
            )))
        }
        _ => Ok(Some(column)),
    }
}

/// Resolves user-level partition values into a bound, given the existing bounds (for LESS THAN,
/// whose lower bound is the greatest existing upper bound at or below its upper bound).
pub fn resolve_bound<'a>(
    partitioning: &Partitioning,
    column: Option<&Column>,
    values: &PartitionValues,
    existing: impl Iterator<Item = &'a PartitionBound>,
) -> Result<PartitionBound> {
    let parse_int = |text: &str, t: &ColumnType| -> Result<i128> {
        match Value::parse(text, t)? {
            Value::Int(v) => Ok(v),
            other => Err(Error::InvalidValue {
                value: format!("{other:?}"),
                column_type: t.to_string(),
                reason: "not an integral value".into(),
            }),
        }
    };
    match (partitioning, column, values) {
        (Partitioning::Unpartitioned, _, PartitionValues::All) => Ok(PartitionBound::All),
        (Partitioning::Range { .. }, Some(c), PartitionValues::LessThan(upper)) => {
            let upper = upper
                .as_deref()
                .map(|u| parse_int(u, &c.column_type))
                .transpose()?;
            let lower = existing
                .filter_map(|b| match b {
                    PartitionBound::Range { upper: Some(u), .. } => Some(*u),
                    _ => None,
                })
                .filter(|u| upper.is_none_or(|upper| *u <= upper))
                .max();
            check_range(lower, upper)
        }
        (Partitioning::Range { .. }, Some(c), PartitionValues::Range { lower, upper }) => {
            let lower = lower
                .as_deref()
                .map(|v| parse_int(v, &c.column_type))
                .transpose()?;
            let upper = upper
                .as_deref()
                .map(|v| parse_int(v, &c.column_type))
                .transpose()?;
            check_range(lower, upper)
        }
        (Partitioning::List { .. }, Some(c), PartitionValues::In(items)) => {
            if items.is_empty() {
                return Err(Error::InvalidDefinition(
                    "a LIST partition needs at least one value".into(),
                ));
            }
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                let v = Value::parse(item, &c.column_type)?;
                if values.contains(&v) {
                    return Err(Error::InvalidDefinition(format!(
                        "duplicate value '{item}' in LIST partition"
                    )));
                }
                values.push(v);
            }
            Ok(PartitionBound::List(values))
        }
        (Partitioning::Unpartitioned, _, _) => Err(Error::InvalidDefinition(
            "an unpartitioned table has no partition values".into(),
        )),
        (Partitioning::Range { .. }, _, _) => Err(Error::InvalidDefinition(
            "a RANGE partition needs VALUES LESS THAN or VALUES [lower, upper)".into(),
        )),
        (Partitioning::List { .. }, _, _) => Err(Error::InvalidDefinition(
            "a LIST partition needs VALUES IN (...)".into(),
        )),
    }
}

fn check_range(lower: Option<i128>, upper: Option<i128>) -> Result<PartitionBound> {
    if let (Some(l), Some(u)) = (lower, upper)
        && l >= u
    {
        return Err(Error::InvalidDefinition(format!(
            "The lower bound of a range partition must be below its upper bound ({l} >= {u})"
        )));
    }
    Ok(PartitionBound::Range { lower, upper })
}

/// Maps rows to partitions.
#[derive(Debug)]
pub(crate) enum Router {
    /// Everything to partition 0.
    All,
    /// Ranges sorted by lower bound.
    Range(RangeRouter),
    /// Value to partition index.
    List(HashMap<Value, usize>),
}

/// RANGE routing: sorted, non-overlapping `[lower, upper)` ranges as plain arrays.
#[derive(Debug)]
pub(crate) struct RangeRouter {
    /// Inclusive lower bounds, ascending (MINVALUE as `i128::MIN`).
    lowers: Vec<i128>,
    /// Exclusive upper bounds (MAXVALUE as `i128::MAX`, see `unbounded_above`).
    uppers: Vec<i128>,
    /// Whether the last range is open above (then `i128::MAX` itself belongs to it).
    unbounded_above: bool,
    /// The partition index of each range.
    partitions: Vec<usize>,
    /// `lowers` and `uppers` as `i64` (MINVALUE and MAXVALUE clamped), when every bound fits:
    /// keys of 64-bit and narrower columns compare without widening.
    bounds_i64: Option<(Vec<i64>, Vec<i64>)>,
}

impl RangeRouter {
    fn new(
        lowers: Vec<i128>,
        uppers: Vec<i128>,
        unbounded_above: bool,
        partitions: Vec<usize>,
    ) -> Self {
        let narrow = |v: &i128, open: i128| {
            if *v == open {
                Some(if open == i128::MIN {
                    i64::MIN
                } else {
                    i64::MAX
                })
            } else {
                i64::try_from(*v).ok()
            }
        };
        let lowers_i64: Option<Vec<i64>> = lowers.iter().map(|v| narrow(v, i128::MIN)).collect();
        // A clamped MAXVALUE excludes i64::MAX itself; `unbounded_above` puts it back.
        let uppers_i64: Option<Vec<i64>> = uppers.iter().map(|v| narrow(v, i128::MAX)).collect();
        RangeRouter {
            bounds_i64: lowers_i64.zip(uppers_i64),
            lowers,
            uppers,
            unbounded_above,
            partitions,
        }
    }

    /// The range holding `key` of a 64-bit or narrower column, with `bounds_i64`.
    #[inline]
    fn range_i64(&self, (lowers, uppers): &(Vec<i64>, Vec<i64>), key: i64) -> Option<usize> {
        // The standard binary search compiles to conditional moves: no mispredictions on keys
        // in random order.
        let r = lowers.partition_point(|l| *l <= key).checked_sub(1)?;
        let below_upper = key < uppers[r] || (self.unbounded_above && r + 1 == uppers.len());
        below_upper.then_some(r)
    }

    /// The partition of every key of a 64-bit or narrower column, with `bounds_i64`; or the
    /// first key that fits no partition.
    fn route_all_i64(
        &self,
        bounds: &(Vec<i64>, Vec<i64>),
        keys: impl ExactSizeIterator<Item = i64> + Clone,
        out: &mut Vec<u32>,
    ) -> std::result::Result<(), i64> {
        // Keys that all fall in one range (a batch in time order) take two searches; other
        // keys one each, with no guess of the range that a key in random order would miss.
        let (min, max) = keys
            .clone()
            .fold((i64::MAX, i64::MIN), |(lo, hi), k| (lo.min(k), hi.max(k)));
        if keys.len() > 0
            && let Some(r) = self.range_i64(bounds, min)
            && self.range_i64(bounds, max) == Some(r)
        {
            out.resize(keys.len(), self.partitions[r] as u32);
            return Ok(());
        }
        for key in keys {
            match self.range_i64(bounds, key) {
                Some(r) => out.push(self.partitions[r] as u32),
                None => return Err(key),
            }
        }
        Ok(())
    }

    /// The partition holding `key`. `last` is the range the previous key fell in, tried first:
    /// rows often arrive in time order, so most keys land where the previous one did.
    fn route(&self, key: i128, last: &mut usize) -> Option<usize> {
        let contains = |r: usize| {
            self.lowers[r] <= key
                && (key < self.uppers[r] || (self.unbounded_above && r + 1 == self.uppers.len()))
        };
        if *last < self.lowers.len() && contains(*last) {
            return Some(self.partitions[*last]);
        }
        // The last range whose lower bound is <= key is the only candidate. Counting without
        // branches beats a binary search's mispredictions on the usual dozens of partitions.
        let below = if self.lowers.len() <= 64 {
            self.lowers.iter().map(|l| usize::from(*l <= key)).sum()
        } else {
            self.lowers.partition_point(|l| *l <= key)
        };
        let r = below.checked_sub(1)?;
        if contains(r) {
            *last = r;
            Some(self.partitions[r])
        } else {
            None
        }
    }
}

impl std::hash::Hash for Value {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            Value::Bool(b) => (0u8, b).hash(state),
            Value::Int(v) => (1u8, v).hash(state),
            Value::Float(v) => (2u8, v.to_bits()).hash(state),
            Value::Str(s) => (3u8, s).hash(state),
        }
    }
}

impl Router {
    pub(crate) fn new<'a>(bounds: impl Iterator<Item = &'a PartitionBound>) -> Router {
        let mut ranges = Vec::new();
        let mut list = HashMap::new();
        let mut all = false;
        for (i, bound) in bounds.enumerate() {
            match bound {
                PartitionBound::All => all = true,
                PartitionBound::Range { lower, upper } => ranges.push((*lower, *upper, i)),
                PartitionBound::List(values) => {
                    for v in values {
                        list.insert(v.clone(), i);
                    }
                }
            }
        }
        if all {
            Router::All
        } else if !list.is_empty() {
            Router::List(list)
        } else {
            ranges.sort_by_key(|(lower, _, _)| lower.unwrap_or(i128::MIN));
            Router::Range(RangeRouter::new(
                ranges.iter().map(|r| r.0.unwrap_or(i128::MIN)).collect(),
                ranges.iter().map(|r| r.1.unwrap_or(i128::MAX)).collect(),
                ranges.last().is_some_and(|r| r.1.is_none()),
                ranges.iter().map(|r| r.2).collect(),
            ))
        }
    }

    fn route_int(&self, key: i128, last: &mut usize) -> Option<usize> {
        match self {
            Router::All => Some(0),
            Router::Range(ranges) => ranges.route(key, last),
            Router::List(map) => map.get(&Value::Int(key)).copied(),
        }
    }

    /// The partition index of every row, or the first value that fits no partition (`None` for
    /// NULL).
    pub(crate) fn route(&self, keys: &dyn Array) -> std::result::Result<Vec<u32>, Option<Value>> {
        let n = keys.len();
        if let Router::All = self {
            return Ok(vec![0; n]);
        }
        let mut out = Vec::with_capacity(n);
        macro_rules! ints {
            ($t:ty) => {{
                let a = keys.as_primitive::<$t>();
                if a.null_count() > 0 {
                    return Err(None);
                }
                let mut last = 0;
                for value in a.values() {
                    let key = i128::from(*value);
                    match self.route_int(key, &mut last) {
                        Some(p) => out.push(p as u32),
                        None => return Err(Some(Value::Int(key))),
                    }
                }
            }};
        }
        // Columns of 64 bits or fewer compare as i64 when every bound fits (most tables).
        macro_rules! narrow {
            ($t:ty) => {{
                match self {
                    Router::Range(
                        ranges @ RangeRouter {
                            bounds_i64: Some(bounds),
                            ..
                        },
                    ) => {
                        let a = keys.as_primitive::<$t>();
                        if a.null_count() > 0 {
                            return Err(None);
                        }
                        let values = a.values().iter().map(|v| i64::from(*v));
                        ranges
                            .route_all_i64(bounds, values, &mut out)
                            .map_err(|key| Some(Value::Int(key.into())))?;
                    }
                    _ => ints!($t),
                }
            }};
        }
        match keys.data_type() {
            DataType::Int8 => narrow!(Int8Type),
            DataType::Int16 => narrow!(Int16Type),
            DataType::Int32 => narrow!(Int32Type),
            DataType::Int64 => narrow!(Int64Type),
            DataType::Date32 => narrow!(Date32Type),
            DataType::Timestamp(TimeUnit::Microsecond, _) => narrow!(TimestampMicrosecondType),
            DataType::Decimal128(_, _) => ints!(Decimal128Type),
            _ => {
                let Router::List(map) = self else {
                    return Err(None);
                };
                for row in 0..n {
                    let Some(v) = Value::from_array(keys, row) else {
                        return Err(None);
                    };
                    match map.get(&v) {
                        Some(p) => out.push(*p as u32),
                        None => return Err(Some(v)),
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int32Array;

    fn range(lower: Option<i128>, upper: Option<i128>) -> PartitionBound {
        PartitionBound::Range { lower, upper }
    }

    #[test]
    fn ranges_overlap_only_when_they_share_a_value() {
        assert!(!range(Some(0), Some(10)).overlaps(&range(Some(10), Some(20))));
        assert!(range(Some(0), Some(11)).overlaps(&range(Some(10), Some(20))));
        assert!(range(None, None).overlaps(&range(Some(10), Some(20))));
        assert!(!range(None, Some(0)).overlaps(&range(Some(0), None)));
    }

    #[test]
    fn less_than_takes_the_greatest_upper_bound_below_as_lower() {
        let col = Column::new("k", ColumnType::Int);
        let part = Partitioning::Range { column: "k".into() };
        let existing = [range(None, Some(10)), range(Some(10), Some(20))];
        let b = resolve_bound(
            &part,
            Some(&col),
            &PartitionValues::LessThan(Some("30".into())),
            existing.iter(),
        )
        .unwrap();
        assert_eq!(b, range(Some(20), Some(30)));
        let b = resolve_bound(
            &part,
            Some(&col),
            &PartitionValues::LessThan(None),
            existing.iter(),
        )
        .unwrap();
        assert_eq!(b, range(Some(20), None));
    }

    #[test]
    fn routing_64_bit_keys_keeps_minvalue_maxvalue_and_wide_bounds_exact() {
        use arrow::array::Int64Array;
        // MINVALUE and MAXVALUE: the extreme keys belong to the open ranges.
        let bounds = [range(None, Some(0)), range(Some(0), None)];
        let router = Router::new(bounds.iter());
        let keys = Int64Array::from(vec![i64::MIN, -1, 0, i64::MAX]);
        assert_eq!(router.route(&keys).unwrap(), vec![0, 0, 1, 1]);
        // An upper bound of exactly i64::MAX excludes i64::MAX itself.
        let bounds = [range(Some(0), Some(i64::MAX.into()))];
        let router = Router::new(bounds.iter());
        let keys = Int64Array::from(vec![i64::MAX - 1, i64::MAX]);
        assert_eq!(
            router.route(&keys).unwrap_err(),
            Some(Value::Int(i64::MAX.into()))
        );
        // A bound beyond i64 (a DECIMAL-sized literal) takes the wide path, with the same answer.
        let bounds = [range(Some(0), Some(i128::from(i64::MAX) + 10))];
        let router = Router::new(bounds.iter());
        assert_eq!(router.route(&keys).unwrap(), vec![0, 0]);
        // Keys in random order across many ranges land where a linear search says.
        let bounds: Vec<_> = (0..40)
            .map(|i| range(Some(i * 100), Some(i * 100 + 100)))
            .collect();
        let router = Router::new(bounds.iter());
        let keys: Vec<i64> = (0..4000).map(|i| (i * 7919) % 4000).collect();
        let expected: Vec<u32> = keys.iter().map(|k| (k / 100) as u32).collect();
        assert_eq!(router.route(&Int64Array::from(keys)).unwrap(), expected);
    }

    #[test]
    fn routing_finds_the_partition_or_names_the_value() {
        let bounds = [
            range(Some(20), Some(30)),
            range(None, Some(10)),
            range(Some(10), Some(20)),
        ];
        let router = Router::new(bounds.iter());
        let keys = Int32Array::from(vec![-5, 10, 29, 15]);
        assert_eq!(router.route(&keys).unwrap(), vec![1, 2, 0, 2]);
        let keys = Int32Array::from(vec![1, 30]);
        assert_eq!(router.route(&keys).unwrap_err(), Some(Value::Int(30)));
        let keys = Int32Array::from(vec![Some(1), None]);
        assert_eq!(router.route(&keys).unwrap_err(), None);
    }
}
