//! `INSERT INTO t [(columns)] VALUES ... | SELECT ...`: rows shaped to the table's schema and
//! loaded atomically (all rows of the statement become visible together, or none).

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, new_null_array};
use arrow::compute::{CastOptions, cast_with_options};
use shale_engine::{Engine, Table};

use crate::ast::Literal;
use crate::error::{Result, SqlError};

/// Where each value of an inserted row goes: for each table column, the index of the source
/// column that fills it, or `None` for NULL.
#[derive(Debug)]
pub struct Target {
    table: Arc<Table>,
    sources: Vec<Option<usize>>,
    source_count: usize,
}

impl Target {
    /// Maps the statement's column list (empty: all columns in order) onto the table.
    pub fn new(table: Arc<Table>, columns: &[String]) -> Result<Target> {
        let schema = table.schema.clone();
        let all = schema.columns();
        let mut sources = vec![None; all.len()];
        if columns.is_empty() {
            for (index, source) in sources.iter_mut().enumerate() {
                *source = Some(index);
            }
            return Ok(Target {
                table,
                sources,
                source_count: all.len(),
            });
        }
        for (source, name) in columns.iter().enumerate() {
            let index = all
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    SqlError::Invalid(format!("Unknown column '{name}' in '{}'", table.name))
                })?;
            if sources[index].replace(source).is_some() {
                return Err(SqlError::Invalid(format!(
                    "Column '{name}' specified twice"
                )));
            }
        }
        Ok(Target {
            table,
            sources,
            source_count: columns.len(),
        })
    }

    fn check_count(&self, value_count: usize) -> Result<()> {
        if value_count != self.source_count {
            return Err(SqlError::Invalid(format!(
                "Inserted target column count: {} doesn't match select/value column count: {}",
                self.source_count, value_count
            )));
        }
        Ok(())
    }

    /// The table rows go into.
    pub fn table(&self) -> &Arc<Table> {
        &self.table
    }

    /// A batch of source columns, cast and reordered into the table's schema.
    pub fn conform(&self, source: &[ArrayRef], row_count: usize) -> Result<RecordBatch> {
        self.check_count(source.len())?;
        let options = CastOptions {
            safe: false,
            ..CastOptions::default()
        };
        let schema = self.table.schema.arrow_schema().clone();
        let mut arrays = Vec::with_capacity(self.sources.len());
        for (field, from) in schema.fields().iter().zip(&self.sources) {
            let array = match from.and_then(|i| source.get(i)) {
                Some(array) => {
                    cast_with_options(array, field.data_type(), &options).map_err(|e| {
                        SqlError::Invalid(format!(
                            "cannot convert a value for column '{}' to {}: {e}",
                            field.name(),
                            field.data_type()
                        ))
                    })?
                }
                None => new_null_array(field.data_type(), row_count),
            };
            arrays.push(array);
        }
        RecordBatch::try_new(schema, arrays).map_err(|e| {
            SqlError::Invalid(format!("cannot insert into '{}': {e}", self.table.name))
        })
    }

    /// A batch from `VALUES` rows.
    pub fn values_batch(&self, rows: &[Vec<Literal>]) -> Result<RecordBatch> {
        for row in rows {
            self.check_count(row.len())?;
        }
        let columns: Vec<ArrayRef> = (0..self.source_count)
            .map(|i| {
                let strings: StringArray = rows
                    .iter()
                    .map(|row| match row.get(i).unwrap_or(&Literal::Null) {
                        Literal::Null => None,
                        Literal::Bool(b) => Some(b.to_string()),
                        Literal::Number(n) => Some(n.clone()),
                        Literal::String(s) => Some(s.clone()),
                    })
                    .collect();
                Arc::new(strings) as ArrayRef
            })
            .collect();
        self.conform(&columns, rows.len())
    }
}

/// Loads `VALUES` rows; returns the count of rows written.
pub fn insert_values(
    engine: &Engine,
    db: &str,
    target: &Target,
    rows: &[Vec<Literal>],
) -> Result<u64> {
    let batch = target.values_batch(rows)?;
    Ok(engine.load(db, &target.table.name, [batch])?.row_count)
}
