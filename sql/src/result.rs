//! [`QueryResult`]: what one statement returns.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Builder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::error::Result;

/// The outcome of one statement: rows (possibly none) with their schema, or, for a statement
/// that returns no rows (DDL, INSERT, USE, ...), an empty schema and the count of rows it
/// changed.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// Columns of the rows; empty for a statement without a result set.
    pub schema: SchemaRef,
    /// The rows.
    pub batches: Vec<RecordBatch>,
    /// Rows written by INSERT (`Query OK, n rows affected`); `None` for other statements.
    pub affected_rows: Option<u64>,
}

impl QueryResult {
    /// A result set.
    pub fn rows(schema: SchemaRef, batches: Vec<RecordBatch>) -> QueryResult {
        QueryResult {
            schema,
            batches,
            affected_rows: None,
        }
    }

    /// `OK` for a statement without a result set.
    pub fn ok() -> QueryResult {
        QueryResult {
            schema: Arc::new(Schema::empty()),
            batches: Vec::new(),
            affected_rows: None,
        }
    }

    /// `OK, n rows affected`.
    pub fn affected(rows: u64) -> QueryResult {
        QueryResult {
            affected_rows: Some(rows),
            ..QueryResult::ok()
        }
    }

    /// Whether the statement returned a result set (as opposed to an OK).
    pub fn has_result_set(&self) -> bool {
        !self.schema.fields().is_empty()
    }

    /// Rows in the result set.
    pub fn row_count(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// One cell of a result built row by row.
#[derive(Debug, Clone)]
pub(crate) enum Cell {
    /// A string, or NULL.
    Str(Option<String>),
    /// An integer, or NULL.
    Int(Option<i64>),
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::Str(Some(s.to_string()))
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::Str(Some(s))
    }
}

impl From<u64> for Cell {
    fn from(v: u64) -> Cell {
        Cell::Int(i64::try_from(v).ok())
    }
}

/// Builds a small result set (SHOW, DESC) row by row. Column types: `true` for BIGINT,
/// `false` for VARCHAR.
pub(crate) fn build(columns: &[(&str, bool)], rows: Vec<Vec<Cell>>) -> Result<QueryResult> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, int)| {
            let t = if *int {
                DataType::Int64
            } else {
                DataType::Utf8
            };
            Field::new(*name, t, true)
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for (index, (_, int)) in columns.iter().enumerate() {
        if *int {
            let mut b = Int64Builder::new();
            for row in &rows {
                match row.get(index) {
                    Some(Cell::Int(v)) => b.append_option(*v),
                    _ => b.append_null(),
                }
            }
            arrays.push(Arc::new(b.finish()));
        } else {
            let mut b = StringBuilder::new();
            for row in &rows {
                match row.get(index) {
                    Some(Cell::Str(v)) => b.append_option(v.as_deref()),
                    Some(Cell::Int(v)) => b.append_option(v.map(|v| v.to_string())),
                    None => b.append_null(),
                }
            }
            arrays.push(Arc::new(b.finish()));
        }
    }
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    Ok(QueryResult::rows(schema, vec![batch]))
}
